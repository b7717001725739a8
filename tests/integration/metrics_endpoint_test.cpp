// The metrics endpoint (daemon/http_endpoint.h) over real TCP, with what it
// serves checked by Prometheus' own `promtool check metrics`; and the
// daemon's handler (daemon/metrics.h) composed from real queue counters
// (ublk/io_stats.h), as `attach --metrics` serves it, without ublk.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "daemon/http_endpoint.h"
#include "daemon/metrics.h"
#include "daemon/prometheus_text.h"
#include "nbd/uri.h"
#include "ublk/io_stats.h"

using namespace unbd;
using namespace unbd::daemon;

namespace {

// Sends `request` to 127.0.0.1:port (or [::1]:port) and returns everything
// the server wrote until it closed.
std::string exchange(uint16_t port, const std::string& request, bool v6 = false) {
    Fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sockaddr_in6 sa6{};
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons(port);
    sa6.sin6_addr = in6addr_loopback;
    const int connected = v6 ? ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa6), sizeof sa6)
                             : ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    REQUIRE(connected == 0);
    REQUIRE(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

std::string body_of(const std::string& response) {
    const auto at = response.find("\r\n\r\n");
    return at == std::string::npos ? "" : response.substr(at + 4);
}

// `promtool check metrics` reads the exposition on stdin; returns its output
// and sets ok to its verdict.
std::string promtool_check(const std::string& text, bool& ok) {
    char path[] = "/tmp/unbd-metrics-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path) << text;
    const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ok = ::pclose(p) == 0;
    ::unlink(path);
    return out;
}

HttpReply sample_metrics(const std::string& path) {
    if (path == "/readyz") return {503, "text/plain; charset=utf-8", "reconnecting\n"};
    if (path != "/metrics") return {404, "text/plain; charset=utf-8", "not found\n"};
    PrometheusText t;
    t.family("unbd_requests_total", "counter", "Requests completed, by operation.");
    t.sample("unbd_requests_total", {{"device", "ublkb0"}, {"op", "read"}}, uint64_t{12});
    t.family("unbd_request_duration_seconds", "histogram", "Time from the kernel to the reply, by operation.");
    t.histogram("unbd_request_duration_seconds", {{"device", "ublkb0"}, {"op", "read"}}, {0.0001, 0.001}, {5, 6, 1},
                0.02);
    return {200, "text/plain; version=0.0.4; charset=utf-8", t.text()};
}

}  // namespace

TEST_CASE("metrics endpoint: GET /metrics over TCP - promtool accepts what it serves") {
    HttpEndpoint endpoint(parse_listen_address("127.0.0.1:0"), sample_metrics);
    const std::string r = exchange(endpoint.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(r.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    bool ok = false;
    const std::string verdict = promtool_check(body_of(r), ok);
    INFO("promtool: " << verdict << "\nbody:\n" << body_of(r));
    CHECK(ok);
    // promtool is a real check: a counter without _total fails it.
    promtool_check("# HELP unbd_reads Reads.\n# TYPE unbd_reads counter\nunbd_reads 1\n", ok);
    CHECK_FALSE(ok);
}

TEST_CASE("metrics endpoint: HEAD, unknown paths, other methods and garbage get their statuses") {
    HttpEndpoint endpoint(parse_listen_address("127.0.0.1:0"), sample_metrics);
    const std::string head = exchange(endpoint.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
    CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(body_of(head).empty());
    CHECK(exchange(endpoint.port(), "GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503 "));
    CHECK(exchange(endpoint.port(), "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    CHECK(exchange(endpoint.port(), "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    CHECK(exchange(endpoint.port(), "hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
    // A head larger than 8 KiB is dropped without an answer; the next client is served.
    CHECK(exchange(endpoint.port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'a') + "\r\n\r\n").empty());
    CHECK(exchange(endpoint.port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("metrics endpoint: a client that sends nothing is dropped after 5 s, then others are served") {
    HttpEndpoint endpoint(parse_listen_address("127.0.0.1:0"), sample_metrics);
    Fd idle(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(endpoint.port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(idle.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(exchange(endpoint.port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::seconds(4));
    CHECK(waited < std::chrono::seconds(15));
}

TEST_CASE("metrics endpoint: a port in use is refused with the address in the message") {
    HttpEndpoint first(parse_listen_address("127.0.0.1:0"), sample_metrics);
    const std::string where = "127.0.0.1:" + std::to_string(first.port());
    try {
        HttpEndpoint second(parse_listen_address(where), sample_metrics);
        FAIL("bound twice");
    } catch (const Error& e) {
        CHECK(std::string(e.what()) == "cannot serve metrics on " + where + ": Address already in use");
    }
}

namespace {

using ublk::IoCounters;

// The value of the sample `name{...}` whose labels contain every fragment
// (`op="read"`); fails the test when there is none or more than one.
double sample_value(const std::string& text, const std::string& name, std::vector<std::string> fragments = {}) {
    std::optional<double> found;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
        at = end == std::string::npos ? text.size() : end + 1;
        if (!line.starts_with(name + "{") && line != name && !line.starts_with(name + " ")) continue;
        bool all = true;
        for (const auto& f : fragments) all = all && line.find(f) != std::string::npos;
        if (!all) continue;
        REQUIRE_MESSAGE(!found, "two samples match " << name << ": " << line);
        found = std::stod(line.substr(line.rfind(' ') + 1));
    }
    REQUIRE_MESSAGE(found, "no sample " << name << " in:\n" << text);
    return *found;
}

nbd::BlockRequest request(nbd::BlockOp op, uint32_t length) {
    nbd::BlockRequest r;
    r.op = op;
    r.length = length;
    return r;
}

// Two queues' counters after known traffic, and the snapshot of a live,
// connected device over them.
struct Device {
    IoCounters q0, q1;
    MetricsSnapshot snapshot() const {
        MetricsSnapshot s;
        s.live = true;
        s.id = 3;
        s.dev = "/dev/ublkb3";
        // What the daemon labels with: the display form, no key file path.
        s.uri = nbd::parse_uri("nbds://host/disk?tls-psk-file=/etc/unbd/k.psk").display();
        s.zero_copy = "off/read_write_fixed";
        s.size_bytes = 1 << 30;
        s.connection = "connected";
        s.reconnects = 2;
        s.loop_age = std::chrono::milliseconds(300);
        s.queues = {q0.metrics(), q1.metrics()};
        return s;
    }
};

void traffic(Device& d) {
    using nbd::BlockOp;
    for (int i = 0; i < 3; ++i) {
        d.q0.started();
        d.q0.completed(request(BlockOp::Read, 4096), 0, 30'000);  // 30 us: the first bucket
    }
    d.q1.started();
    d.q1.completed(request(BlockOp::Read, 65536), 0, 2'000'000);  // 2 ms
    d.q1.started();
    d.q1.completed(request(BlockOp::Write, 8192), 0, 20'000'000'000);  // 20 s: above every bound
    d.q1.started();
    d.q1.completed(request(BlockOp::Write, 8192), -5, 1'000);  // EIO: an error, no bytes
    d.q0.started();
    d.q0.completed(request(BlockOp::Flush, 0), 0, 100'000);
    d.q0.started();
    d.q0.completed(request(BlockOp::WriteZeroes, 1 << 20), 0, 100'000);
    d.q0.refused();
    d.q1.started();  // still in flight
    d.q0.set_waits(9, 4);
    d.q1.set_waits(5, 0);
}

}  // namespace

TEST_CASE("metrics handler: counters of two queues become summed samples that promtool accepts") {
    Device d;
    traffic(d);
    const HttpReply reply = metrics_reply("/metrics", d.snapshot());
    const std::string& t = reply.body;
    REQUIRE(reply.status == 200);
    CHECK(reply.content_type.starts_with("text/plain; version=0.0.4"));
    bool ok = false;
    const std::string verdict = promtool_check(t, ok);
    INFO("promtool: " << verdict << "\nbody:\n" << t);
    CHECK(ok);

    const std::string dev = R"(device="3",dev="/dev/ublkb3",uri="nbds://host:10809/disk")";
    CHECK(sample_value(t, "unbd_requests_total", {dev, R"(op="read")"}) == 4);
    CHECK(sample_value(t, "unbd_requests_total", {R"(op="write")"}) == 2);
    CHECK(sample_value(t, "unbd_request_errors_total", {R"(op="write")"}) == 1);
    CHECK(sample_value(t, "unbd_request_errors_total", {R"(op="read")"}) == 0);
    CHECK(sample_value(t, "unbd_requests_total", {R"(op="flush")"}) == 1);
    CHECK(sample_value(t, "unbd_requests_total", {R"(op="trim")"}) == 0);
    CHECK(sample_value(t, "unbd_requests_total", {R"(op="write_zeroes")"}) == 1);
    CHECK(sample_value(t, "unbd_bytes_total", {R"(op="read")"}) == 3 * 4096 + 65536);
    CHECK(sample_value(t, "unbd_bytes_total", {R"(op="write")"}) == 8192);
    CHECK(sample_value(t, "unbd_refused_requests_total") == 1);
    CHECK(sample_value(t, "unbd_requests_in_flight") == 1);
    CHECK(sample_value(t, "unbd_queue_waits_total") == 14);
    CHECK(sample_value(t, "unbd_queue_held_waits_total") == 4);
    CHECK(sample_value(t, "unbd_reconnects_total") == 2);
    CHECK(sample_value(t, "unbd_export_size_bytes") == 1 << 30);
    CHECK(sample_value(t, "unbd_device_live") == 1);
    CHECK(sample_value(t, "unbd_device_info", {R"(zero_copy="off/read_write_fixed")"}) == 1);
    CHECK(sample_value(t, "unbd_connection_state", {R"(state="connected")"}) == 1);
    CHECK(sample_value(t, "unbd_connection_state", {R"(state="reconnecting")"}) == 0);
    CHECK(sample_value(t, "unbd_connection_up", {R"(queue="1")"}) == 1);

    // The histogram: cumulative buckets in seconds, its count equal to the
    // requests of its op, its sum the durations'.
    const std::string h = "unbd_request_duration_seconds";
    CHECK(sample_value(t, h + "_bucket", {R"(op="read")", R"(le="5e-05")"}) == 3);
    CHECK(sample_value(t, h + "_bucket", {R"(op="read")", R"(le="0.001")"}) == 3);
    CHECK(sample_value(t, h + "_bucket", {R"(op="read")", R"(le="0.0025")"}) == 4);
    CHECK(sample_value(t, h + "_bucket", {R"(op="write")", R"(le="10")"}) == 1);
    CHECK(sample_value(t, h + "_bucket", {R"(op="write")", R"(le="+Inf")"}) == 2);
    for (const char* op : {"read", "write", "flush", "trim", "write_zeroes"}) {
        const std::string label = std::string("op=\"") + op + "\"";
        CAPTURE(op);
        CHECK(sample_value(t, h + "_count", {label}) == sample_value(t, "unbd_requests_total", {label}));
    }
    CHECK(sample_value(t, h + "_sum", {R"(op="read")"}) == doctest::Approx(0.002 + 3 * 30e-6));
    CHECK(sample_value(t, h + "_sum", {R"(op="write")"}) == doctest::Approx(20.000001));
    // The URI label is the one in the snapshot: the daemon gives
    // Uri::display(), without TLS parameters (key file paths).
    CHECK(t.find("k.psk") == std::string::npos);
}

TEST_CASE("metrics handler: readyz is 503 with a reason until live and while a connection is down") {
    Device d;
    MetricsSnapshot s = d.snapshot();
    CHECK(metrics_reply("/readyz", s).status == 200);
    CHECK(metrics_reply("/healthz", s).status == 200);

    s.connection = "reconnecting";
    HttpReply r = metrics_reply("/readyz", s);
    CHECK(r.status == 503);
    CHECK(r.body == "/dev/ublkb3: connections reconnecting\n");
    CHECK(sample_value(render_metrics(s), "unbd_connection_state", {R"(state="reconnecting")"}) == 1);

    s = d.snapshot();
    d.q1.set_connected(false);
    s.queues = {d.q0.metrics(), d.q1.metrics()};
    r = metrics_reply("/readyz", s);
    CHECK(r.status == 503);
    CHECK(r.body == "/dev/ublkb3: the connection of queue 1 is down\n");
    CHECK(sample_value(render_metrics(s), "unbd_connection_up", {R"(queue="1")"}) == 0);

    // Before START_DEV (the endpoint is bound before the device exists).
    const MetricsSnapshot starting;
    CHECK(metrics_reply("/readyz", starting).status == 503);
    CHECK(metrics_reply("/readyz", starting).body == "the device is not live yet\n");
    CHECK(metrics_reply("/healthz", starting).status == 503);
    CHECK(metrics_reply("/metrics", starting).status == 503);
    CHECK(metrics_reply("/other", d.snapshot()).status == 404);

    // A main loop stuck for longer than kHealthyLoopAge is unhealthy.
    s = d.snapshot();
    s.loop_age = kHealthyLoopAge + std::chrono::seconds(1);
    CHECK(metrics_reply("/healthz", s).status == 503);
}

TEST_CASE("metrics handler: served over TCP from live counters, scrape after scrape") {
    Device d;
    HttpEndpoint endpoint(parse_listen_address("127.0.0.1:0"),
                          [&d](const std::string& path) { return metrics_reply(path, d.snapshot()); });
    const auto reads = [&] {
        const std::string r = exchange(endpoint.port(), "GET /metrics HTTP/1.1\r\n\r\n");
        REQUIRE(r.starts_with("HTTP/1.1 200 "));
        return sample_value(body_of(r), "unbd_requests_total", {R"(op="read")"});
    };
    CHECK(reads() == 0);
    traffic(d);
    CHECK(reads() == 4);
    CHECK(exchange(endpoint.port(), "GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("metrics handler: served on IPv6 loopback too") {
    Device d;
    HttpEndpoint endpoint(parse_listen_address("[::1]:0"),
                          [&d](const std::string& path) { return metrics_reply(path, d.snapshot()); });
    const std::string out = exchange(endpoint.port(), "GET /readyz HTTP/1.1\r\n\r\n", true);
    CHECK(out.starts_with("HTTP/1.1 200 "));
    CHECK(body_of(out) == "ready\n");
}
