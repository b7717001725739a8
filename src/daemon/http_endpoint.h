// A tiny HTTP/1.1 GET server for the daemon's metrics and health endpoints
// (`attach --metrics ADDR:PORT`): Prometheus scrapes /metrics, Kubernetes
// probes /healthz and /readyz. Nothing else is served.
//
// Contract:
//   constructor  parses and binds ADDR:PORT (throws Error saying what is
//                wrong: a bad address, a port in use), then runs asio on its
//                own thread. The thread inherits the caller's signal mask:
//                create it after the daemon blocked its stop signals.
//   each request one at a time, on that thread: the request head must
//                arrive within 5 s and fit in 8 KiB; GET (or HEAD) of a
//                path calls the handler, which must be quick and
//                thread-safe (snapshots of relaxed atomic counters); every
//                reply closes its connection. Other methods get 405, heads
//                that do not parse 400.
//   destructor   stops asio and joins the thread.
// The queue threads are never touched: the handler reads their counters.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace unbd::daemon {

struct HttpReply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

// "GET /metrics HTTP/1.1" -> method and path (query string dropped);
// nullopt when the line is not a request line. Pure.
struct RequestLine {
    std::string method;
    std::string path;
};
std::optional<RequestLine> parse_request_line(std::string_view line);

// The bytes sent for a reply: status line, Content-Type, Content-Length,
// Connection: close; the body unless head_only. Pure.
std::string render_reply(const HttpReply& reply, bool head_only);

// "127.0.0.1:9101", "[::1]:9101", "0.0.0.0:9101", ":9101" (every IPv4 and
// IPv6 address) -> host ("" for any) and port; throws a usage Error.
struct ListenAddress {
    std::string host;
    uint16_t port = 0;
};
ListenAddress parse_listen_address(const std::string& text);
// The address as parse_listen_address reads it back: "127.0.0.1:9101",
// "[::1]:9101", ":9101". Pure.
std::string to_string(const ListenAddress& a);

// Binds and listens on `where` and closes again: throws the Error the
// endpoint would (a port in use), for a check before any work is done.
void check_can_listen(const ListenAddress& where);

class HttpEndpoint {
public:
    using Handler = std::function<HttpReply(const std::string& path)>;
    HttpEndpoint(const ListenAddress& where, Handler handler);
    ~HttpEndpoint();
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    // The port bound (the one asked for, or the kernel's choice for 0).
    uint16_t port() const noexcept { return port_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace unbd::daemon
