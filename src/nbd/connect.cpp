// connect_export / list_exports: asio does the resolving, connecting and the
// handshake I/O, each bounded by a deadline; the Handshake machine decides
// what to send and how much to read. At the end the socket is taken away from
// asio and handed back blocking, at the first byte of the transmission phase.
//
// Everything runs on a private io_context on the caller's thread; nothing
// outlives the call except the returned fd.
#include "nbd/connect.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "nbd/handshake.h"
#include "nbd/tls_module.h"

namespace unbd::nbd {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(std::chrono::milliseconds ms) {
    char buf[32];
    if (ms.count() % 1000 == 0)
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms.count() / 1000));
    else
        std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(ms.count()) / 1000.0);
    return buf;
}

// Runs handlers until `finished` is set; false when the deadline came first.
bool run_until(asio::io_context& io, const bool& finished, Clock::time_point deadline) {
    io.restart();
    while (!finished) {
        if (Clock::now() >= deadline) return false;
        io.run_one_until(deadline);
    }
    return true;
}

// Keepalive after a third of the timeout of silence, then probes; and
// TCP_USER_TIMEOUT: unacknowledged data for that long kills the connection.
// Best effort: a failure only loses the early warning.
void set_int_option(int fd, int level, int name, int value) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
        spdlog::debug("setsockopt({}, {}) failed: {}", level, name, std::strerror(errno));
}

struct Connector {
    void detect_dead_peer(int fd) {
        const int ms = static_cast<int>(std::min<long long>(options.dead_peer_timeout.count(), 1LL << 30));
        const int idle = std::max(1, ms / 3000);
        set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle);
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, std::max(1, idle / 3));
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, 3);
        set_int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, ms);
    }

    const Uri& uri;
    const ConnectOptions& options;
    asio::io_context io;

    [[noreturn]] void connect_timeout() {
        throw Error("timed out after " + seconds_text(options.connect_timeout) + " connecting to " + uri.display(),
                    ETIMEDOUT);
    }

    [[noreturn]] void cannot_connect(const std::error_code& ec) {
        throw Error("cannot connect to " + uri.display() + ": " + ec.message(), ec.value());
    }

    asio::ip::tcp::socket connect_tcp() {
        auto deadline = Clock::now() + options.connect_timeout;
        asio::ip::tcp::resolver resolver(io);
        asio::ip::tcp::resolver::results_type endpoints;
        std::error_code ec;
        bool finished = false;
        resolver.async_resolve(uri.host, std::to_string(uri.port),
                               [&](const std::error_code& e, asio::ip::tcp::resolver::results_type r) {
                                   ec = e;
                                   endpoints = std::move(r);
                                   finished = true;
                               });
        if (!run_until(io, finished, deadline)) {
            resolver.cancel();
            throw Error("timed out after " + seconds_text(options.connect_timeout) + " resolving host '" + uri.host +
                        "'", ETIMEDOUT);
        }
        if (ec) throw Error("cannot resolve host '" + uri.host + "': " + ec.message(), ec.value());

        asio::ip::tcp::socket sock(io);
        finished = false;
        asio::async_connect(sock, endpoints, [&](const std::error_code& e, const asio::ip::tcp::endpoint&) {
            ec = e;
            finished = true;
        });
        if (!run_until(io, finished, deadline)) connect_timeout();
        if (ec) cannot_connect(ec);
        sock.set_option(asio::ip::tcp::no_delay(true), ec);  // small option packets must not wait
        if (options.dead_peer_timeout.count() > 0) detect_dead_peer(sock.native_handle());
        return sock;
    }

    asio::local::stream_protocol::socket connect_unix() {
        auto deadline = Clock::now() + options.connect_timeout;
        asio::local::stream_protocol::socket sock(io);
        std::error_code ec;
        bool finished = false;
        asio::local::stream_protocol::endpoint endpoint;
        try {
            endpoint = asio::local::stream_protocol::endpoint(uri.socket_path);
        } catch (const std::system_error& e) {
            throw Error("bad socket path '" + uri.socket_path + "': " + e.code().message());
        }
        sock.async_connect(endpoint, [&](const std::error_code& e) {
            ec = e;
            finished = true;
        });
        if (!run_until(io, finished, deadline)) connect_timeout();
        if (ec) {
            // connect() says only "connection refused" for a regular file or a directory.
            struct stat st{};
            if (::stat(uri.socket_path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
                throw Error("cannot connect to " + uri.display() + ": " + uri.socket_path +
                                " is not a socket (is the server running, and is that its socket?)",
                            ENOTSOCK);
            cannot_connect(ec);
        }
        return sock;
    }

    [[noreturn]] void handshake_timed_out() {
        throw Error("timed out after " + seconds_text(options.handshake_timeout) +
                        " waiting for the server's handshake on " + uri.display(),
                    ETIMEDOUT);
    }

    // Drives the machine until it is done, or until it waits for TLS to
    // start; throws on failure. write(bytes) sends all; read(buffer) returns
    // {bytes read, end of stream}.
    template <typename Write, typename Read>
    void drive(Handshake& hs, Write&& write, Read&& read) {
        std::vector<std::byte> in;
        for (;;) {
            auto out = hs.take_output();
            if (!out.empty()) {
                try {
                    write(std::span<const std::byte>(out));
                } catch (const Error&) {
                    if (!hs.failed()) throw;  // a failing handshake's ABORT may find the socket closed
                }
            }
            if (hs.failed()) throw Error(hs.error(), EPROTO);
            if (hs.done() || hs.tls_pending()) return;

            in.resize(hs.bytes_needed());
            auto [got, eof] = read(std::span<std::byte>(in));
            hs.feed(std::span<const std::byte>(in.data(), got));
            if (eof) {
                if (hs.failed()) throw Error(hs.error(), EPROTO);
                throw Error(hs.eof_message(), ECONNRESET);
            }
        }
    }

    // The plain part of the conversation, with asio.
    template <typename Socket>
    void negotiate(Socket& sock, Handshake& hs, Clock::time_point deadline) {
        auto write = [&](std::span<const std::byte> out) {
            std::error_code ec;
            bool finished = false;
            asio::async_write(sock, asio::buffer(out.data(), out.size()), [&](const std::error_code& e, std::size_t) {
                ec = e;
                finished = true;
            });
            if (!run_until(io, finished, deadline)) handshake_timed_out();
            if (ec) throw Error("cannot send the handshake to " + uri.display() + ": " + ec.message(), ec.value());
        };
        auto read = [&](std::span<std::byte> in) -> std::pair<std::size_t, bool> {
            std::error_code ec;
            std::size_t got = 0;
            bool finished = false;
            asio::async_read(sock, asio::buffer(in.data(), in.size()), [&](const std::error_code& e, std::size_t n) {
                ec = e;
                got = n;
                finished = true;
            });
            if (!run_until(io, finished, deadline)) handshake_timed_out();
            if (ec == asio::error::eof || ec == asio::error::connection_reset) return {got, true};
            if (ec) throw Error("cannot read the handshake from " + uri.display() + ": " + ec.message(), ec.value());
            return {got, false};
        };
        drive(hs, write, read);
    }

    // The rest of the conversation, after STARTTLS, through TLS.
    void negotiate_tls(TlsChannel& tls, Handshake& hs, Clock::time_point deadline) {
        auto write = [&](std::span<const std::byte> out) { tls.write_all(out, deadline); };
        auto read = [&](std::span<std::byte> in) -> std::pair<std::size_t, bool> {
            std::size_t n = tls.read_some(in, deadline);
            return {n, n == 0};
        };
        try {
            drive(hs, write, read);
        } catch (const Error& e) {
            // TLS 1.3 finishes the client's handshake before the server
            // has judged the client: its refusal is the first read's EOF.
            // (Or as a failed write, when the first option is still going out.)
            const bool closed = e.error_number() == ECONNRESET || e.error_number() == EPIPE;
            if (!closed || tls.has_client_certificate() || !uri.tls_settings.psk_file.empty()) throw;
            throw Error(std::string(e.what()) +
                            " (does the server want a client certificate? put client-cert.pem and client-key.pem "
                            "in the --tls-certificates directory)",
                        ECONNRESET);
        }
    }

    template <typename Socket>
    Fd release_blocking(Socket& sock) {
        std::error_code ec;
        Fd fd(sock.release(ec));
        if (ec) throw Error("cannot take the socket from asio: " + ec.message(), ec.value());
        int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0)
            throw Error(errno_text("fcntl(F_SETFL) on the NBD socket", errno), errno);
        return fd;
    }

    // After the plain part: either the socket as it is, or (STARTTLS
    // accepted) the TLS handshake, the rest of the conversation through it,
    // and a tunnel whose other end is the returned socket.
    template <typename Socket>
    Fd finish(Socket& sock, Handshake& hs, Clock::time_point deadline) {
        negotiate(sock, hs, deadline);
        if (!hs.tls_pending()) return release_blocking(sock);
        std::error_code ec;
        Fd fd(sock.release(ec));
        if (ec) throw Error("cannot take the socket from asio: " + ec.message(), ec.value());
        int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
            throw Error(errno_text("fcntl(F_SETFL) on the NBD socket", errno), errno);
        tls->handshake(fd.get(), deadline);
        hs.tls_started();
        spdlog::debug("TLS with {}: {}", uri.display(), tls->description());
        negotiate_tls(*tls, hs, deadline);
        if (tls->wants_ktls()) return hand_to_kernel(std::move(fd));
        tunnel = tls_module().open_tunnel(std::move(tls), std::move(fd));
        return tunnel->take_engine_end();
    }

    // --tls-mode=ktls: the kernel encrypts and decrypts from here on; the
    // engine gets the server socket itself (blocking, as without TLS) and
    // OpenSSL is done. No close_notify at the end (the server sees a plain
    // close after NBD_CMD_DISC); records other than data are the reply
    // reader's (nbd/ktls.h).
    Fd hand_to_kernel(Fd fd) {
        if (const std::string why = tls->give_kernel_both_directions(); !why.empty())
            throw Error("--tls-mode=ktls: kernel TLS is not possible with " + uri.display() + ": " + why +
                            " (--tls-mode=userspace works without it)",
                        EOPNOTSUPP);
        ktls_description = tls->description();
        tls.reset();  // SSL_free neither sends nor closes: the fd stays ours
        int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0)
            throw Error(errno_text("fcntl(F_SETFL) on the NBD socket", errno), errno);
        return fd;
    }

    // Connects with the right transport, runs the handshake; returns the fd
    // the transmission phase runs on.
    Fd run(Handshake& hs) {
        // TLS settings are checked (files read) before anything is connected.
        if (uri.tls && uri.tls_settings.mode == TlsMode::Ktls && uri.transport != Transport::Tcp)
            throw Error("--tls-mode=ktls needs TCP: the kernel's TLS works on TCP sockets only, and " + uri.display() +
                            " is a Unix socket (--tls-mode=userspace works there)",
                        EOPNOTSUPP);
        if (uri.tls) tls = tls_module().open_session(uri.tls_settings, uri.host, uri.display());
        Fd fd;
        if (uri.transport == Transport::Tcp) {
            auto sock = connect_tcp();
            std::error_code ec;
            auto peer = sock.remote_endpoint(ec);
            spdlog::debug("connected to {} ({})", uri.display(), ec ? "?" : peer.address().to_string());
            fd = finish(sock, hs, Clock::now() + options.handshake_timeout);
        } else {
            auto sock = connect_unix();
            spdlog::debug("connected to {}", uri.display());
            fd = finish(sock, hs, Clock::now() + options.handshake_timeout);
        }
        const auto& i = hs.info();
        spdlog::debug("handshake done: {}newstyle{}, export '{}', size {}, flags {:#06x}, block sizes {}/{}/{}{}",
                      hs.fixed_newstyle() ? "fixed " : "", hs.no_zeroes() ? " with NO_ZEROES" : "", i.name, i.size,
                      i.transmission_flags, i.block_size_min, i.block_size_preferred, i.block_size_max,
                      i.structured_replies ? ", structured replies" : "");
        return fd;
    }

    std::unique_ptr<TlsChannel> tls;  // nbds: until the tunnel takes it
    std::unique_ptr<TlsPump> tunnel;
    std::string ktls_description;  // the kernel does TLS: "TLSv1.2, psk, ..."
};

}  // namespace

Connection connect_export(const Uri& uri, const ConnectOptions& options) {
    Connector c{uri, options, {}};
    Handshake hs({Handshake::Goal::Export, uri.export_name, options.structured_replies, uri.display(), uri.tls});
    Fd fd = c.run(hs);
    return Connection{std::move(fd), hs.info(), std::move(c.tunnel), std::move(c.ktls_description)};
}

std::string Connection::tls_description() const {
    if (tls) return "userspace (" + tls->description() + ")";
    return ktls.empty() ? std::string() : "ktls (" + ktls + ")";
}

std::vector<ExportListing> list_exports(const Uri& uri, const ConnectOptions& options) {
    Connector c{uri, options, {}};
    Handshake hs({Handshake::Goal::List, uri.export_name, false, uri.display(), uri.tls});
    Fd fd = c.run(hs);  // ABORT already sent; closing is the rest of the soft disconnect
    return hs.exports();
}

}  // namespace unbd::nbd
