// The metrics endpoint (daemon/http_endpoint.h) over real TCP, with what it
// serves checked by Prometheus' own `promtool check metrics`.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/error.h"
#include "common/fd.h"
#include "daemon/http_endpoint.h"
#include "daemon/prometheus_text.h"

using namespace unbd;
using namespace unbd::daemon;

namespace {

// Sends `request` to 127.0.0.1:port and returns everything the server
// wrote until it closed.
std::string exchange(uint16_t port, const std::string& request) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
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
