// Daemon liveness (liveness.h): the control socket first, the pid second.
#include "daemon/liveness.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "common/error.h"

namespace unbd::daemon {

namespace {

// /proc/PID/stat: state (field 3) and start time (field 22), read after the
// last ')' since the command name may hold anything.
struct ProcStat {
    char state = '?';
    uint64_t start_time = 0;
};

std::optional<ProcStat> proc_stat(const std::string& pid) {
    std::ifstream in("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    ProcStat s;
    rest >> s.state;
    std::string skip;
    for (int field = 4; field < 22 && rest; ++field) rest >> skip;
    rest >> s.start_time;
    if (!rest) return std::nullopt;
    return s;
}

}  // namespace

ProcessIdentity own_identity() {
    ProcessIdentity id;
    struct stat st{};
    if (::stat("/proc/self/ns/pid", &st) == 0) id.pid_ns = st.st_ino;
    if (const auto s = proc_stat("self")) id.start_time = s->start_time;
    return id;
}

bool process_alive(int pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
    const auto s = proc_stat(std::to_string(pid));
    return !s || s->state != 'Z';
}

namespace {

// The state file's pid is a live process of our pid namespace that started
// when the daemon did: the daemon itself.
bool pid_means_daemon(const DeviceState& state) {
    if (state.pid_ns == 0 || state.pid_ns != own_identity().pid_ns || !process_alive(state.pid)) return false;
    const auto s = proc_stat(std::to_string(state.pid));
    return s && s->start_time == state.pid_start;
}

}  // namespace

DaemonStatus daemon_status(const DeviceState& state) {
    DaemonStatus st;
    st.contact = contact_daemon(state.id);
    st.reach = st.contact.reach;
    st.pid = st.contact.pid;
    st.why = st.contact.why;
    if (st.reach == Reach::Unreachable && st.contact.error == EACCES) {
        // Not ours to connect to: a process we can recognise is running.
        if (pid_means_daemon(state)) {
            st.reach = Reach::Running;
            st.pid = state.pid;
        }
        return st;
    }
    if (st.reach != Reach::Gone) return st;
    if (state.pid_ns == 0) {
        // Written by an unbd without control sockets: its pid is the daemon.
        if (process_alive(state.pid)) {
            st.reach = Reach::Running;
            st.pid = state.pid;
            st.legacy = true;
        }
        return st;
    }
    if (pid_means_daemon(state)) {
        st.reach = Reach::Unreachable;
        st.why = "its daemon (pid " + std::to_string(state.pid) + ") runs but its control socket " +
                 control_socket_path(state.id) + " is gone";
    }
    return st;
}

DaemonStatus running_daemon(const DeviceState& state, const std::string& what_for) {
    DaemonStatus st = daemon_status(state);
    const std::string dev = "device " + std::to_string(state.id);
    if (st.reach == Reach::Gone)
        throw Error(dev + " has no running daemon (unbd recover it, or unbd detach it): cannot " + what_for, ESRCH);
    if (st.reach == Reach::Unreachable)
        throw Error(dev + ": " + st.why + ": cannot " + what_for +
                        " (stop that process yourself if it is stuck, then unbd detach or unbd recover)",
                    EHOSTUNREACH);
    return st;
}

}  // namespace unbd::daemon
