// TlsTunnel's pump (see tls_tunnel.h): one thread, non-blocking on both
// sides, every step tried each round; when a round moves nothing, poll()
// for exactly what the stuck steps wait on.
#include "nbd/tls/tls_tunnel.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.h"

namespace unbd::nbd {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBufferBytes = 256 * 1024;  // each way
constexpr auto kDrainAfterEngineClosed = std::chrono::seconds(2);
constexpr auto kDrainOnStop = std::chrono::seconds(1);

void set_nonblocking(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0)
        throw Error(errno_text("fcntl(F_SETFL) on a TLS tunnel socket", errno), errno);
}

// What a stuck SSL call waits on.
short ssl_wants(SSL* ssl, int ret) {
    switch (SSL_get_error(ssl, ret)) {
        case SSL_ERROR_WANT_READ: return POLLIN;
        case SSL_ERROR_WANT_WRITE: return POLLOUT;
        default: return 0;  // failed or ended
    }
}

}  // namespace

void TlsTunnel::Pending::consumed(std::size_t n) {
    off += n;
    if (off == len) off = len = 0;
}

TlsTunnel::TlsTunnel(std::unique_ptr<TlsSession> session, Fd server)
    : session_(std::move(session)), server_(std::move(server)), stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!stop_) throw Error(errno_text("cannot create an eventfd", errno), errno);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        throw Error(errno_text("cannot create the TLS tunnel's socketpair", errno), errno);
    local_.reset(pair[0]);
    engine_.reset(pair[1]);
    set_nonblocking(local_.get(), true);
    set_nonblocking(server_.get(), true);
    description_ = session_->description();
    up_.buf.resize(kBufferBytes);
    down_.buf.resize(kBufferBytes);
    start();
}

void TlsTunnel::start() {
    uint64_t drained = 0;
    [[maybe_unused]] ssize_t n = ::read(stop_.get(), &drained, sizeof drained);  // a pause's signal
    pausing_ = false;
    thread_ = std::thread([this] { run(); });
}

TlsTunnel::~TlsTunnel() {
    // A paused tunnel has no thread to stop; and after fork() its eventfd is
    // shared with the child's running copy, which a signal would stop.
    if (!thread_.joinable()) return;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
}

void TlsTunnel::pause() {
    if (!thread_.joinable()) return;
    pausing_ = true;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
}

void TlsTunnel::resume() {
    if (!thread_.joinable()) start();
}

Fd TlsTunnel::take_engine_end() { return std::move(engine_); }

void TlsTunnel::run() noexcept {
    SSL* ssl = session_->ssl();
    const int server = server_.get(), local = local_.get();
    Pending& up = up_;
    Pending& down = down_;
    bool engine_done = false, server_done = false, stopping = false;
    Clock::time_point deadline = Clock::time_point::max();
    std::string why;  // the server side's end, for the log

    for (;;) {
        bool moved = false;
        short want_server = 0, want_local = 0;

        if (!engine_done && up.empty()) {
            ssize_t n = ::read(local, up.buf.data(), up.buf.size());
            if (n > 0) {
                up.len = static_cast<std::size_t>(n);
                moved = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (stopping) engine_done = true;  // nothing more was written before the stop
                want_local |= POLLIN;
            } else {
                engine_done = true;  // closed or shut down (or reset: nothing more to send)
            }
            if (engine_done && deadline == Clock::time_point::max()) deadline = Clock::now() + kDrainAfterEngineClosed;
        }
        if (!server_done && !up.empty()) {
            ERR_clear_error();
            int r = SSL_write(ssl, up.buf.data() + up.off, static_cast<int>(up.len - up.off));
            if (r > 0) {
                up.consumed(static_cast<std::size_t>(r));
                moved = true;
            } else if (short w = ssl_wants(ssl, r)) {
                want_server |= w;
            } else {
                why = session_->explain_failure("sending to the server", SSL_get_error(ssl, r));
                server_done = true;
            }
        }
        if (!server_done && down.empty()) {
            ERR_clear_error();
            int r = SSL_read(ssl, down.buf.data(), static_cast<int>(down.buf.size()));
            if (r > 0) {
                down.len = static_cast<std::size_t>(r);
                moved = true;
            } else if (short w = ssl_wants(ssl, r)) {
                want_server |= w;
            } else {
                int err = SSL_get_error(ssl, r);
                why = err == SSL_ERROR_ZERO_RETURN || closed_without_notify(err)
                          ? "the server closed the connection"
                                                   : session_->explain_failure("reading from the server", err);
                server_done = true;
            }
        }
        if (!down.empty()) {
            ssize_t n = ::send(local, down.buf.data() + down.off, down.len - down.off, MSG_NOSIGNAL);
            if (n > 0) {
                down.consumed(static_cast<std::size_t>(n));
                moved = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                want_local |= POLLOUT;
            } else {
                down.consumed(down.len - down.off);  // the engine is gone: nobody to deliver to
                engine_done = true;
            }
        }

        if (server_done && (down.empty() || engine_done)) break;
        if (engine_done && up.empty()) {
            session_->close_notify();
            break;
        }
        if (moved) continue;

        const auto now = Clock::now();
        if (now >= deadline) break;
        int timeout = -1;
        if (deadline != Clock::time_point::max())
            timeout = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
        // A side waited on for nothing is left out: a closed peer reports
        // POLLHUP whatever was asked, which would spin this loop.
        pollfd p[3] = {{want_server ? server : -1, want_server, 0},
                       {want_local ? local : -1, want_local, 0},
                       {stop_.get(), POLLIN, 0}};
        int n = ::poll(p, stopping ? 2 : 3, timeout);
        if (n < 0 && errno != EINTR) {
            why = errno_text("poll in the TLS tunnel", errno);
            break;
        }
        if (!stopping && n > 0 && (p[2].revents & POLLIN)) {
            if (pausing_) return;  // leave everything as it is: resume() goes on from here
            stopping = true;
            const auto d = Clock::now() + kDrainOnStop;
            if (d < deadline) deadline = d;
        }
        // POLLHUP/POLLERR on either side: the next round's read or write says what happened.
    }
    if (!why.empty()) spdlog::debug("TLS tunnel to {} ended: {}", session_->where(), why);
    ::shutdown(local, SHUT_RDWR);  // the engine sees EOF, as from a plain socket
    ::shutdown(server, SHUT_RDWR);
}

}  // namespace unbd::nbd
