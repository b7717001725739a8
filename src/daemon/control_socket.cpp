// The control socket (control_socket.h): binding, the serving thread, and
// the client's connect + one request.
#include "daemon/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/wait.h"
#include "daemon/state_file.h"

namespace unbd::daemon {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        throw Error("the control socket path " + path + " is longer than " + std::to_string(sizeof a.sun_path - 1) +
                        " bytes: use a shorter UNBD_STATE_DIR",
                    ENAMETOOLONG);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

Fd unix_socket(int flags) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0));
    if (!fd) throw Error(errno_text("cannot create a Unix socket", errno), errno);
    return fd;
}

// 0 when connected, else the errno of connect().
int try_connect(int fd, const std::string& path) {
    const sockaddr_un a = address(path);
    for (;;) {
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

// Waits until `fd` is ready for `events`, or throws when `deadline` passed.
void wait_ready(int fd, short events, Clock::time_point deadline, const char* what) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) throw Error(std::string(what) + ": timed out", ETIMEDOUT);
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left));
        if (r > 0) return;
        if (r < 0 && errno != EINTR) throw Error(errno_text(what, errno), errno);
    }
}

// One '\n'-terminated line (without it), within `deadline`. Throws Error.
std::string read_line(int fd, Clock::time_point deadline, const char* what) {
    std::string line;
    char buf[4096];
    for (;;) {
        if (const auto nl = line.find('\n'); nl != std::string::npos) return line.substr(0, nl);
        if (line.size() > kMaxControlLine) throw Error(std::string(what) + ": line too long", EMSGSIZE);
        wait_ready(fd, POLLIN, deadline, what);
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) throw Error(errno_text(what, errno), errno);
        if (n == 0) throw Error(std::string(what) + ": the connection was closed", ECONNRESET);
        line.append(buf, static_cast<std::size_t>(n));
    }
}

void write_all(int fd, const std::string& text, Clock::time_point deadline, const char* what) {
    std::size_t done = 0;
    while (done < text.size()) {
        wait_ready(fd, POLLOUT, deadline, what);
        const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) throw Error(errno_text(what, errno), errno);
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string control_socket_path(uint32_t id) {
    // Beside the state file: root reaches a user's daemon in that user's dir.
    // (A daemon listens in its own state dir: ControlServer.)
    const std::string state = state_path(id);
    return state.substr(0, state.rfind('/')) + "/" + std::to_string(id) + ".sock";
}

void remove_control_socket(uint32_t id) noexcept { ::unlink(control_socket_path(id).c_str()); }

// ---- server -----------------------------------------------------------------

ControlServer::ControlServer(uint32_t id, Handler handler)
    : path_(state_dir() + "/" + std::to_string(id) + ".sock"), handler_(std::move(handler)), listen_(unix_socket(0)),
      wake_(::eventfd(0, EFD_CLOEXEC)) {
    if (!wake_) throw Error(errno_text("cannot create an eventfd", errno), errno);
    ensure_state_dir();
    // A socket file left by a daemon that was killed: nobody listens on it.
    // One that still accepts may belong to a daemon just killed whose files
    // are still being closed (`unbd recover` right after SIGKILL): allow it 2 s.
    int err = 0;
    const bool free = wait_for(
        [&] {
            Fd probe = unix_socket(SOCK_NONBLOCK);
            err = try_connect(probe.get(), path_);
            return err != 0 && err != EAGAIN;
        },
        2s);
    if (!free)
        throw Error("another daemon listens on " + path_ + ": device " + std::to_string(id) + " is served already",
                    EBUSY);
    if (err == ECONNREFUSED) ::unlink(path_.c_str());
    const sockaddr_un a = address(path_);
    if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw Error(errno_text("cannot bind the control socket " + path_, errno), errno);
    // It detaches and resizes devices: root's (whoever runs the daemon) only.
    // Nobody can connect before listen(), so the window before chmod is harmless.
    if (::chmod(path_.c_str(), 0600) != 0 || ::listen(listen_.get(), 16) != 0) {
        const int err = errno;
        ::unlink(path_.c_str());
        throw Error(errno_text("cannot listen on the control socket " + path_, err), err);
    }
    thread_ = std::thread([this] { run(); });
}

ControlServer::~ControlServer() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    listen_.reset();
    ::unlink(path_.c_str());
}

void ControlServer::run() noexcept {
    for (;;) {
        pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        const int r = ::poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            spdlog::error("control socket {}: poll: {}", path_, std::strerror(errno));
            return;
        }
        if (p[1].revents != 0) return;
        if (p[0].revents == 0) continue;
        Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                spdlog::warn("control socket {}: accept: {}", path_, std::strerror(errno));
            continue;
        }
        serve(std::move(conn));
    }
}

// One request, one reply. A slow or silent client costs at most 2 s.
void ControlServer::serve(Fd conn) noexcept {
    const auto deadline = Clock::now() + 2s;
    std::string reply;
    try {
        const ControlRequest request = parse_request(read_line(conn.get(), deadline, "control request"));
        spdlog::debug("control socket: {}", name(request.cmd));
        try {
            reply = encode_ok(handler_(request));
        } catch (const std::exception& e) {
            reply = encode_error(e.what());
        }
    } catch (const Error& e) {
        if (e.error_number() != EINVAL) {
            spdlog::debug("control socket: {}", e.what());
            return;  // the client went away or stayed silent: nobody to answer
        }
        reply = encode_error(e.what());
    } catch (const std::exception& e) {
        reply = encode_error(e.what());
    }
    try {
        write_all(conn.get(), reply, deadline, "control reply");
    } catch (const std::exception& e) {
        spdlog::debug("control socket: {}", e.what());
    }
}

// ---- client -----------------------------------------------------------------

DaemonContact contact_daemon(uint32_t id) {
    DaemonContact c;
    const std::string path = control_socket_path(id);
    Fd fd = unix_socket(SOCK_NONBLOCK);
    const int err = try_connect(fd.get(), path);
    if (err == ENOENT || err == ECONNREFUSED) {
        c.reach = Reach::Gone;
        return c;
    }
    if (err != 0) {
        c.reach = Reach::Unreachable;
        c.error = err;
        c.why = err == EAGAIN ? "its control socket " + path + " accepts no connections (backlog full)"
                              : errno_text("cannot connect to its control socket " + path, err);
        return c;
    }
    c.reach = Reach::Running;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) c.pid = cred.pid;
    c.conn = std::move(fd);
    return c;
}

nlohmann::json ask(DaemonContact& contact, const ControlRequest& request, std::chrono::milliseconds timeout) {
    if (contact.reach != Reach::Running || !contact.conn)
        throw Error(std::string("cannot ask the daemon to ") + name(request.cmd) + ": " +
                        (contact.why.empty() ? std::string("it is not connected") : contact.why),
                    contact.error != 0 ? contact.error : ENOTCONN);
    const auto deadline = Clock::now() + timeout;
    const std::string what = std::string("the daemon's answer to ") + name(request.cmd);
    try {
        write_all(contact.conn.get(), encode_request(request), deadline, what.c_str());
        const std::string line = read_line(contact.conn.get(), deadline, what.c_str());
        contact.conn.reset();  // one request per connection
        return parse_reply(line);
    } catch (const Error& e) {
        contact.conn.reset();
        if (e.error_number() == ETIMEDOUT)
            throw Error("the daemon did not answer '" + std::string(name(request.cmd)) + "' within " +
                            std::to_string(timeout.count() / 1000) + " s",
                        ETIMEDOUT);
        throw;
    }
}

}  // namespace unbd::daemon
