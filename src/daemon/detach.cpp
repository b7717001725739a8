#include "daemon/detach.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/wait.h"
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

bool process_alive(int pid) {
    if (pid <= 0 || ::kill(pid, 0) != 0) return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool device_gone(uint32_t id) {
    return !exists(ublk::block_device_path(id)) && !exists(ublk::char_device_path(id));
}

// STOP_DEV + DEL_DEV without a daemon. Returns false when no such device.
// Without a state file only a device unbd made (its mark) is deleted.
bool delete_directly(uint32_t id, bool have_state) {
    ublk::ControlDevice control;
    const std::optional<ublk::DevInfo> info = control.find(id);
    if (!info) return false;
    if (!have_state && info->ublksrv_flags != ublk::kUnbdDeviceMark)
        throw no_device_error("ublk device " + std::to_string(id) + " was not made by unbd: leaving it alone");
    const int stop = control.try_stop(id);
    if (stop < 0) spdlog::debug("STOP_DEV {}: {}", id, stop);
    const int del = control.try_remove_async(id);
    if (del < 0) throw Error(errno_text("cannot delete ublk device " + std::to_string(id), del), -del);
    return true;
}

}  // namespace

void detach_device(uint32_t id) {
    // A state file unbd cannot read (corrupt, or from a newer unbd) names no
    // daemon to stop: refuse rather than delete a device under a live one.
    const auto state = state_file_exists(id) ? std::optional<DeviceState>(load_state(id)) : std::nullopt;
    if (state && process_alive(state->pid)) {
        if (::kill(state->pid, SIGTERM) != 0 && errno != ESRCH) {
            throw Error(errno_text("cannot signal the daemon of device " + std::to_string(id) + " (pid " +
                                       std::to_string(state->pid) + ")",
                                   errno),
                        errno);
        }
        if (!wait_for([&] { return !process_alive(state->pid); }, 90s)) {
            throw Error("the daemon of device " + std::to_string(id) + " (pid " + std::to_string(state->pid) +
                        ") did not finish detaching within 90 s");
        }
    }
    // The daemon is gone (or never finished its job): clean up directly.
    const bool existed = !device_gone(id) ? delete_directly(id, state.has_value()) : false;
    if (!state && !existed) throw no_device_error("no unbd device " + std::to_string(id) + " (detached already?)");
    remove_state(id);
    if (!wait_for([&] { return device_gone(id); }, 10s)) {
        throw Error("device " + std::to_string(id) + " is still present 10 s after being deleted");
    }
}

}  // namespace unbd::daemon
