// The control socket: a device daemon's identity, <state_dir>/<id>.sock.
//
// Why not the pid in the state file: a daemon in a container records the
// pid its own namespace sees (often 1); signalled from the host that pid is
// someone else. A Unix socket path is the same across pid namespaces, and
// the kernel translates the listener's pid into each client's namespace
// (SO_PEERCRED; 0 when the daemon is not visible from there).
//
// Liveness: the socket accepts a connection = the daemon runs. ENOENT or
// ECONNREFUSED (a socket file left by a killed daemon) = it is gone.
// Anything else (no permission, backlog full) = unreachable: say so.
//
// Server contract (ControlServer, one per daemon):
//   constructor  binds (replacing a socket nobody listens on; refusing one
//                somebody does), chmod 0600, listens, starts one thread.
//   the thread   serves one connection at a time: reads one request line
//                (2 s budget), calls the handler, writes its reply line.
//                Handlers run on that thread: they must be quick and
//                thread-safe (the daemon's answer with snapshots, or hand
//                the work to its main thread with a signal to itself).
//   destructor   stops and joins the thread, closes, unlinks the path.
// The thread inherits the caller's signal mask: create it after the
// daemon blocked its stop signals.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "daemon/control_protocol.h"

namespace unbd::daemon {

std::string control_socket_path(uint32_t id);
void remove_control_socket(uint32_t id) noexcept;

class ControlServer {
public:
    // Returns the reply's fields (encode_ok adds "ok"); a thrown exception
    // becomes {"ok":false,"error":what()}.
    using Handler = std::function<nlohmann::json(const ControlRequest&)>;

    ControlServer(uint32_t id, Handler handler);  // throws Error
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

private:
    void run() noexcept;
    void serve(Fd conn) noexcept;

    std::string path_;
    Handler handler_;
    Fd listen_;
    Fd wake_;  // eventfd: the destructor -> the thread
    std::thread thread_;
};

// ---- the client side (the CLI) ----

enum class Reach {
    Running,      // connected: the daemon is there
    Gone,         // no socket, or nobody listens on it
    Unreachable,  // something else: `why` says what
};

struct DaemonContact {
    Reach reach = Reach::Gone;
    int pid = 0;      // Running: the daemon's pid as this process sees it (0: not visible here)
    std::string why;  // Unreachable: one line
    int error = 0;    // Unreachable: connect()'s errno
    Fd conn;          // Running: the connection, for ask()
};

// Connects without blocking (a daemon that stopped accepting cannot hang us).
DaemonContact contact_daemon(uint32_t id);

// Sends one request on a Running contact's connection and returns the
// reply (parse_reply). Throws Error when the daemon says no, closes the
// connection, or does not answer within `timeout`.
nlohmann::json ask(DaemonContact& contact, const ControlRequest& request,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace unbd::daemon
