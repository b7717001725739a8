#include "daemon/detach.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/wait.h"
#include "daemon/control_socket.h"
#include "daemon/liveness.h"
#include "daemon/state_file.h"
#include "ublk/control_device.h"

namespace unbd::daemon {

using namespace std::chrono_literals;

uint32_t parse_device_ref(const std::string& text) {
    std::string digits = text;
    for (const char* prefix : {"/dev/ublkb", "ublkb"}) {
        const std::string p = prefix;
        if (digits.rfind(p, 0) == 0) {
            digits = digits.substr(p.size());
            break;
        }
    }
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
        throw usage_error("'" + text + "' is not a unbd device: give /dev/ublkbN or its number N");
    }
    return static_cast<uint32_t>(std::stoul(digits));
}

namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool device_gone(uint32_t id) {
    return !exists(ublk::block_device_path(id)) && !exists(ublk::char_device_path(id));
}

// STOP_DEV + DEL_DEV without a daemon. Returns false when no such device.
// Without a state file only a device unbd made (its mark) is deleted. A
// state file vouches for a device only when its owner could have made it:
// root, or the user owning that (unprivileged) device -- not a file a user
// planted for a number that is someone else's.
bool delete_directly(uint32_t id, std::optional<uint32_t> state_owner) {
    ublk::ControlDevice control;
    const std::optional<ublk::DevInfo> info = control.find(id);
    if (!info) return false;
    const bool vouched = state_owner && (*state_owner == 0 || *state_owner == info->owner_uid);
    if (!vouched && info->ublksrv_flags != ublk::kUnbdDeviceMark)
        throw no_device_error("ublk device " + std::to_string(id) + " was not made by unbd: leaving it alone");
    const int stop = control.try_stop(id);
    if (stop < 0) spdlog::debug("STOP_DEV {}: {}", id, stop);
    const int del = control.try_remove_async(id);
    if (del < 0) throw Error(errno_text("cannot delete ublk device " + std::to_string(id), del), -del);
    return true;
}

// Asks a running daemon to detach and waits (bounded) until it is gone.
void detach_through_daemon(const DeviceState& state, DaemonStatus daemon) {
    const std::string who = "the daemon of device " + std::to_string(state.id) + " (pid " + std::to_string(daemon.pid) + ")";
    if (daemon.legacy) {
        // An unbd before control sockets: its pid is from this namespace.
        if (::kill(daemon.pid, SIGTERM) != 0 && errno != ESRCH)
            throw Error(errno_text("cannot signal " + who, errno), errno);
        if (!wait_for([&] { return !process_alive(daemon.pid); }, 90s))
            throw Error(who + " did not finish detaching within 90 s");
        return;
    }
    ask(daemon.contact, ControlRequest{ControlCommand::Detach});
    // Gone once its socket refuses and (where we can see it) its process ended.
    if (!wait_for([&] { return daemon_status(state).reach == Reach::Gone; }, 90s, 100ms))
        throw Error(who + " did not finish detaching within 90 s");
}

}  // namespace

void detach_device(uint32_t id) {
    // A state file unbd cannot read (corrupt, or from a newer unbd) names no
    // daemon to stop: refuse rather than delete a device under a live one.
    const auto state = state_file_exists(id) ? std::optional<DeviceState>(load_state(id)) : std::nullopt;
    if (state) {
        DaemonStatus daemon = daemon_status(*state);
        if (daemon.reach == Reach::Unreachable)
            throw Error("cannot detach device " + std::to_string(id) + ": " + daemon.why +
                            " (if that process is stuck, kill it; then unbd detach again)",
                        EHOSTUNREACH);
        if (daemon.reach == Reach::Running) detach_through_daemon(*state, std::move(daemon));
    }
    // The daemon is gone (or never finished its job): clean up directly.
    const bool existed =
        !device_gone(id) ? delete_directly(id, state ? state_file_owner(id) : std::nullopt) : false;
    if (!state && !existed) throw no_device_error("no unbd device " + std::to_string(id) + " (detached already?)");
    remove_state(id);
    remove_control_socket(id);
    if (!wait_for([&] { return device_gone(id); }, 10s)) {
        throw Error("device " + std::to_string(id) + " is still present 10 s after being deleted");
    }
}

std::vector<std::string> sweep_stale_devices() {
    std::vector<std::string> waiting;
    std::optional<ublk::ControlDevice> control;
    for (const DeviceState& s : all_states()) {
        if (daemon_status(s).reach != Reach::Gone) continue;
        try {
            if (!control) control.emplace();
            if (!control->find(s.id)) {
                spdlog::info("device {} is gone and so is its daemon: forgetting its state file", s.id);
                remove_state(s.id);
                remove_control_socket(s.id);
                continue;
            }
        } catch (const Error& e) {
            spdlog::debug("cannot look at ublk device {}: {}", s.id, e.what());
            return waiting;  // no ublk here, or no rights: leave everything as it is
        }
        waiting.push_back("device " + std::to_string(s.id) + " (" + s.uri + ") lost its daemon: unbd recover " +
                          std::to_string(s.id) + ", or unbd detach " + std::to_string(s.id));
    }
    return waiting;
}

}  // namespace unbd::daemon
