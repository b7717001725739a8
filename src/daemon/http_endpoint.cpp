#include "daemon/http_endpoint.h"

#include <charconv>
#include <chrono>

#include <asio.hpp>
#include <spdlog/spdlog.h>

#include "common/error.h"

namespace unbd::daemon {

using asio::ip::tcp;

std::optional<RequestLine> parse_request_line(std::string_view line) {
    const auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return std::nullopt;
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
    if (!line.substr(sp2 + 1).starts_with("HTTP/1.")) return std::nullopt;
    RequestLine r{std::string(line.substr(0, sp1)), std::string(line.substr(sp1 + 1, sp2 - sp1 - 1))};
    if (r.path.front() != '/') return std::nullopt;
    if (const auto q = r.path.find('?'); q != std::string::npos) r.path.resize(q);
    return r;
}

std::string render_reply(const HttpReply& reply, bool head_only) {
    const char* reason = reply.status == 200   ? "OK"
                         : reply.status == 400 ? "Bad Request"
                         : reply.status == 404 ? "Not Found"
                         : reply.status == 405 ? "Method Not Allowed"
                         : reply.status == 503 ? "Service Unavailable"
                                               : "Status";
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason + "\r\nContent-Type: " +
                      reply.content_type + "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                      "\r\nConnection: close\r\n";
    if (reply.status == 405) out += "Allow: GET, HEAD\r\n";
    out += "\r\n";
    if (!head_only) out += reply.body;
    return out;
}

ListenAddress parse_listen_address(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return usage_error("--metrics '" + text + "': " + why +
                           " (expected HOST:PORT, [IPv6]:PORT or :PORT for every address)");
    };
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw bad("no port");
    ListenAddress a;
    a.host = text.substr(0, colon);
    if (a.host.starts_with('[')) {
        if (!a.host.ends_with(']') || a.host.size() < 3) throw bad("unbalanced brackets");
        a.host = a.host.substr(1, a.host.size() - 2);
    } else if (a.host.find(':') != std::string::npos) {
        throw bad("an IPv6 address needs brackets");
    }
    const std::string port = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
        throw bad("the port must be a number from 0 to 65535");
    a.port = static_cast<uint16_t>(value);
    if (!a.host.empty()) {
        asio::error_code aec;
        asio::ip::make_address(a.host, aec);
        if (aec) throw bad("'" + a.host + "' is not an IP address");
    }
    return a;
}

std::string to_string(const ListenAddress& a) {
    const bool v6 = a.host.find(':') != std::string::npos;
    return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

// One connection at a time: accept, read the head (5 s, 8 KiB), answer, close.
struct HttpEndpoint::Impl {
    asio::io_context io;
    tcp::acceptor acceptor{io};
    Handler handler;
    tcp::socket peer{io};
    asio::streambuf head{8192};
    asio::steady_timer deadline{io};

    void accept_next() {
        peer = tcp::socket(io);
        acceptor.async_accept(peer, [this](const asio::error_code& ec) {
            if (ec == asio::error::operation_aborted) return;
            if (ec) {
                spdlog::warn("metrics endpoint: accept: {}", ec.message());
                return accept_next();
            }
            read_head();
        });
    }

    void read_head() {
        head.consume(head.size());
        deadline.expires_after(std::chrono::seconds(5));
        deadline.async_wait([this](const asio::error_code& ec) {
            if (!ec) peer.close();  // too slow: the read below fails and we move on
        });
        asio::async_read_until(peer, head, "\r\n\r\n", [this](const asio::error_code& ec, std::size_t) {
            deadline.cancel();
            if (ec) {  // closed, too slow or too big: nothing worth answering
                peer.close();
                return accept_next();
            }
            answer();
        });
    }

    void answer() {
        const std::string_view data(static_cast<const char*>(head.data().data()), head.size());
        const auto request = parse_request_line(data.substr(0, data.find("\r\n")));
        HttpReply reply;
        bool head_only = false;
        if (!request) {
            reply = {400, "text/plain; charset=utf-8", "bad request\n"};
        } else if (request->method != "GET" && request->method != "HEAD") {
            reply = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
        } else {
            head_only = request->method == "HEAD";
            try {
                reply = handler(request->path);
            } catch (const std::exception& e) {
                reply = {503, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
            }
        }
        auto bytes = std::make_shared<std::string>(render_reply(reply, head_only));
        asio::async_write(peer, asio::buffer(*bytes), [this, bytes](const asio::error_code&, std::size_t) {
            asio::error_code ignored;
            peer.shutdown(tcp::socket::shutdown_both, ignored);
            peer.close();
            accept_next();
        });
    }
};

namespace {

// Opens, binds and listens; throws Error naming the address and the reason.
void listen_on(tcp::acceptor& acceptor, const ListenAddress& where) {
    const auto address = where.host.empty() ? asio::ip::address(asio::ip::address_v6::any())
                                            : asio::ip::make_address(where.host);
    const tcp::endpoint endpoint(address, where.port);
    const std::string shown = (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
                              std::to_string(where.port);
    asio::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    // ":PORT" listens on IPv4 too (v4-mapped), whatever net.ipv6.bindv6only says.
    if (!ec && address.is_v6() && where.host.empty()) acceptor.set_option(asio::ip::v6_only(false), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(16, ec);
    if (ec) throw Error("cannot serve metrics on " + shown + ": " + ec.message(), ec.value());
}

}  // namespace

void check_can_listen(const ListenAddress& where) {
    asio::io_context io;
    tcp::acceptor acceptor(io);
    listen_on(acceptor, where);
}

HttpEndpoint::HttpEndpoint(const ListenAddress& where, Handler handler) : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::move(handler);
    listen_on(impl_->acceptor, where);
    port_ = impl_->acceptor.local_endpoint().port();
    impl_->accept_next();
    thread_ = std::thread([impl = impl_.get()] {
        try {
            impl->io.run();
        } catch (const std::exception& e) {
            spdlog::error("metrics endpoint stopped: {}", e.what());
        }
    });
}

HttpEndpoint::~HttpEndpoint() {
    impl_->io.stop();
    if (thread_.joinable()) thread_.join();
}

}  // namespace unbd::daemon
