#include "daemon/udev_names.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/fd.h"

namespace unbd::daemon {

namespace {

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

std::string sys_block(uint32_t id) { return "/sys/block/ublkb" + std::to_string(id); }

}  // namespace

void check_device_name(const std::string& name) {
    bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name.front() != '-';
    for (char c : name) ok = ok && name_char(c);
    if (!ok)
        throw usage_error("--name '" + name +
                          "' is not a usable device name: 1-64 letters, digits, '.', '_' or '-', not starting "
                          "with '.' or '-' (it becomes /dev/unbd/NAME)");
}

void check_name_free(const std::string& name, const std::optional<uint32_t>& id) {
    for (const DeviceState& s : all_states()) {
        if (s.name != name || (id && s.id == *id)) continue;
        // A state file without its device is a leftover, not an owner.
        if (::access(sys_block(s.id).c_str(), F_OK) != 0) continue;
        throw Error("the name '" + name + "' is taken by " + s.dev + " (" + s.uri +
                        "): choose another --name, or detach that device first",
                    EEXIST);
    }
}

std::string udev_properties(const DeviceState& state) {
    // udev reads KEY=VALUE lines; a value runs to the end of its line, so no
    // newline may get in (the URI was parsed and re-printed, the name checked).
    auto line = [](const std::string& key, std::string value) {
        for (char& c : value)
            if (c == '\n' || c == '\r') c = ' ';
        return key + "=" + value + "\n";
    };
    std::string out = line("UNBD_ID", std::to_string(state.id)) + line("UNBD_URI", state.uri);
    if (!state.name.empty()) out += line("UNBD_NAME", state.name);
    return out;
}

void announce_to_udev(uint32_t id) noexcept {
    const std::string path = sys_block(id) + "/uevent";
    const Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    static constexpr char kChange[] = "change";
    if (!fd.valid() || ::write(fd.get(), kChange, sizeof kChange - 1) < 0)
        spdlog::warn("cannot ask udev to name ublkb{} ({}: {})", id, path, std::strerror(errno));
}

}  // namespace unbd::daemon
