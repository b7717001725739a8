// The pure parts of the metrics endpoint: the request line and the
// --metrics address parsers, the reply bytes, and Prometheus' text format
// (daemon/http_endpoint.h, daemon/prometheus_text.h).
#include <doctest/doctest.h>

#include "common/error.h"
#include "daemon/http_endpoint.h"
#include "daemon/prometheus_text.h"
#include "ublk/io_stats.h"

using namespace unbd;
using namespace unbd::daemon;

TEST_CASE("metrics: request lines") {
    const auto r = parse_request_line("GET /metrics HTTP/1.1");
    REQUIRE(r);
    CHECK(r->method == "GET");
    CHECK(r->path == "/metrics");
    CHECK(parse_request_line("HEAD /readyz?verbose=1 HTTP/1.0")->path == "/readyz");
    CHECK_FALSE(parse_request_line(""));
    CHECK_FALSE(parse_request_line("GET"));
    CHECK_FALSE(parse_request_line("GET /metrics"));
    CHECK_FALSE(parse_request_line("GET  HTTP/1.1"));
    CHECK_FALSE(parse_request_line("GET metrics HTTP/1.1"));
    CHECK_FALSE(parse_request_line("GET /metrics SPDY/3"));
    CHECK_FALSE(parse_request_line(" /metrics HTTP/1.1"));
}

TEST_CASE("metrics: --metrics addresses") {
    CHECK(parse_listen_address("127.0.0.1:9101").host == "127.0.0.1");
    CHECK(parse_listen_address("127.0.0.1:9101").port == 9101);
    CHECK(parse_listen_address("[::1]:9101").host == "::1");
    CHECK(parse_listen_address(":9101").host.empty());
    CHECK(parse_listen_address("0.0.0.0:0").port == 0);
    for (const char* bad : {"9101", "::1:9101", "[::1:9101", "host.example:9101", "127.0.0.1:", "127.0.0.1:65536",
                            "127.0.0.1:-1", "127.0.0.1:91x", "[]:1"}) {
        CAPTURE(bad);
        try {
            parse_listen_address(bad);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.kind() == Failure::Usage);
            CHECK(std::string(e.what()).starts_with("--metrics '"));
        }
    }
}

TEST_CASE("metrics: replies say their length and close the connection") {
    const std::string r = render_reply({200, "text/plain; version=0.0.4", "abc\n"}, false);
    CHECK(r == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\n"
               "Connection: close\r\n\r\nabc\n");
    // HEAD: the same head, no body.
    CHECK(render_reply({503, "text/plain", "not ready\n"}, true) ==
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
          "Connection: close\r\n\r\n");
    CHECK(render_reply({405, "text/plain", ""}, false).find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("metrics: Prometheus text: families, escaped labels, cumulative histogram buckets") {
    PrometheusText t;
    t.family("unbd_device_info", "gauge", "the device; value 1");
    t.sample("unbd_device_info", {{"uri", "nbd://h/a\"b\\c\nd"}, {"dev", "ublkb0"}}, uint64_t{1});
    t.family("unbd_request_duration_seconds", "histogram", "latency");
    t.histogram("unbd_request_duration_seconds", {{"op", "read"}}, {0.001, 0.01}, {2, 3, 1}, 0.5);
    CHECK(t.text() ==
          "# HELP unbd_device_info the device; value 1\n"
          "# TYPE unbd_device_info gauge\n"
          "unbd_device_info{uri=\"nbd://h/a\\\"b\\\\c\\nd\",dev=\"ublkb0\"} 1\n"
          "# HELP unbd_request_duration_seconds latency\n"
          "# TYPE unbd_request_duration_seconds histogram\n"
          "unbd_request_duration_seconds_bucket{op=\"read\",le=\"0.001\"} 2\n"
          "unbd_request_duration_seconds_bucket{op=\"read\",le=\"0.01\"} 5\n"
          "unbd_request_duration_seconds_bucket{op=\"read\",le=\"+Inf\"} 6\n"
          "unbd_request_duration_seconds_sum{op=\"read\"} 0.5\n"
          "unbd_request_duration_seconds_count{op=\"read\"} 6\n");
}

TEST_CASE("metrics: request durations fall in the first bucket whose bound they do not exceed") {
    CHECK(ublk::duration_bucket(0) == 0);
    CHECK(ublk::duration_bucket(50'000) == 0);
    CHECK(ublk::duration_bucket(50'001) == 1);
    CHECK(ublk::duration_bucket(10'000'000'000) == ublk::kDurationBoundsNs.size() - 1);
    CHECK(ublk::duration_bucket(10'000'000'001) == ublk::kDurationBuckets - 1);
}

TEST_CASE("metrics: unbd stats keeps its meaning over the per-op counters") {
    ublk::IoCounters c;
    nbd::BlockRequest r;
    r.op = nbd::BlockOp::Read;
    r.length = 4096;
    c.started();
    c.completed(r, 0, 1000);
    c.started();
    c.completed(r, -5, 1000);
    r.op = nbd::BlockOp::Trim;
    c.started();
    c.completed(r, 0, 1000);
    r.op = nbd::BlockOp::WriteZeroes;
    c.started();
    c.completed(r, 0, 1000);
    c.refused();
    c.started();
    const ublk::IoStats s = c.snapshot();
    CHECK(s.reads == 1);  // successful ones only, as before
    CHECK(s.read_bytes == 4096);
    CHECK(s.discards == 2);
    CHECK(s.errors == 2);  // the failed read and the refused request
    CHECK(s.in_flight == 1);
    CHECK(s.writes == 0);
}

TEST_CASE("metrics: an address prints as it is read, for the state file") {
    for (const char* text : {"127.0.0.1:9100", "[::1]:9100", ":9100", "0.0.0.0:1", "[fe80::1]:65535"}) {
        CAPTURE(text);
        CHECK(to_string(parse_listen_address(text)) == text);
    }
}
