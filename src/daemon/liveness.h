// Is a device's daemon running? Asked of its control socket
// (daemon/control_socket.h), never of the pid in its state file alone: that
// pid is what the daemon's own pid namespace calls it.
//
// The state file's pid is believed only to contradict a dead socket, and
// only when it can mean the same process here: the file names the pid
// namespace it was written in and the process's start time, and both
// match (a daemon whose socket file was removed: refuse, do not guess).
// The same belief answers a user who may not connect (the socket is
// root's, 0600): `unbd list` still tells a running daemon from a dead one.
// A state file without them comes from an unbd before control sockets:
// its pid is all there is, and signals (as that unbd did) are the way to
// talk to the daemon.
#pragma once

#include <cstdint>

#include "daemon/control_socket.h"
#include "daemon/state_file.h"

namespace unbd::daemon {

// This process, for its state file.
struct ProcessIdentity {
    uint64_t pid_ns = 0;      // inode of /proc/self/ns/pid
    uint64_t start_time = 0;  // field 22 of /proc/self/stat (clock ticks since boot)
};
ProcessIdentity own_identity();

// True when pid is a running process (not a zombie) in this pid namespace.
bool process_alive(int pid);

struct DaemonStatus {
    Reach reach = Reach::Gone;
    int pid = 0;           // Running: as this process sees it (0: not visible from here)
    bool legacy = false;   // Running without a control socket: an older unbd, signal `pid`
    std::string why;       // Unreachable: one line
    DaemonContact contact; // Running, not legacy: the open connection
};

DaemonStatus daemon_status(const DeviceState& state);

// Throws Error (with `what_for` and the reason) unless the daemon is
// Running; returns the status otherwise.
DaemonStatus running_daemon(const DeviceState& state, const std::string& what_for);

}  // namespace unbd::daemon
