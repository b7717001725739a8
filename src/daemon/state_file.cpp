// State files on disk: where they live, atomic writes, reading them back.
// The JSON form itself is in state_json.cpp (pure).
#include "daemon/state_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>

#include "common/error.h"
#include "common/file_text.h"
#include "ublk/control_device.h"

namespace unbd::daemon {

namespace fs = std::filesystem;

std::string state_dir() {
    if (const char* env = std::getenv("UNBD_STATE_DIR"); env != nullptr && *env != '\0') return env;
    const uid_t uid = ::geteuid();
    if (uid == 0) return "/run/unbd";
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') return std::string(xdg) + "/unbd";
    return "/run/user/" + std::to_string(uid) + "/unbd";
}

void ensure_state_dir() {
    const std::string dir = state_dir();
    const bool root = ::geteuid() == 0;
    if (::mkdir(dir.c_str(), root ? 0755 : 0700) == 0 || errno == EEXIST) return;
    const int err = errno;
    if (err == ENOENT && !root && std::getenv("UNBD_STATE_DIR") == nullptr)
        throw Error(dir + " cannot be made: there is no runtime directory for uid " + std::to_string(::geteuid()) +
                        " (a systemd-logind session makes /run/user/UID; or set XDG_RUNTIME_DIR)",
                    err);
    std::error_code ec;  // UNBD_STATE_DIR may name a directory whose parents do not exist yet
    if (err == ENOENT && fs::create_directories(dir, ec)) return;
    throw Error(errno_text("cannot create " + dir, err), err);
}

std::vector<std::string> readable_state_dirs() {
    std::vector<std::string> dirs{state_dir()};
    if (::geteuid() != 0 || std::getenv("UNBD_STATE_DIR") != nullptr) return dirs;
    std::error_code ec;
    for (const auto& user : fs::directory_iterator("/run/user", ec)) {
        const fs::path dir = user.path() / "unbd";
        if (fs::is_directory(dir, ec)) dirs.push_back(dir.string());
    }
    return dirs;
}

namespace {

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// The owner of ublk device id as the kernel knows it; nullopt when there is
// no such device (or no ublk). An owner found is kept for the process.
std::optional<uint32_t> device_owner(uint32_t id) {
    static std::map<uint32_t, uint32_t> known;
    if (const auto it = known.find(id); it != known.end()) return it->second;
    try {
        ublk::ControlDevice control;
        if (const auto info = control.find(id)) return known[id] = info->owner_uid;
    } catch (const Error&) {
    }
    return std::nullopt;
}

}  // namespace

std::string state_path(uint32_t id) {
    const std::string name = "/" + std::to_string(id) + ".json";
    const std::vector<std::string> dirs = readable_state_dirs();
    if (file_exists(dirs.front() + name) || dirs.size() == 1) return dirs.front() + name;
    // Root, for a device that is not its own: only the owner's dir speaks for
    // a device that exists -- a file another user put in theirs does not.
    const std::optional<uint32_t> owner = device_owner(id);
    for (auto dir = dirs.begin() + 1; dir != dirs.end(); ++dir) {
        const bool owners_dir = *dir == "/run/user/" + std::to_string(owner.value_or(0)) + "/unbd";
        if ((!owner || owners_dir) && file_exists(*dir + name)) return *dir + name;
    }
    return dirs.front() + name;
}

std::optional<uint32_t> state_file_owner(uint32_t id) {
    struct stat st {};
    if (::stat(state_path(id).c_str(), &st) != 0) return std::nullopt;
    return st.st_uid;
}

void write_state(const DeviceState& state) {
    ensure_state_dir();
    const std::string path = state_dir() + "/" + std::to_string(state.id) + ".json";
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << state.to_json().dump(2) << "\n";
        if (!out.flush()) throw Error("cannot write " + tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Error(errno_text("cannot write " + path, err), err);
    }
}

bool state_file_exists(uint32_t id) {
    std::error_code ec;
    return fs::exists(state_path(id), ec);
}

std::optional<DeviceState> read_state(uint32_t id) {
    const std::optional<std::string> text = read_file_text(state_path(id));
    if (!text) return std::nullopt;
    try {
        return DeviceState::from_json(nlohmann::json::parse(*text));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

DeviceState load_state(uint32_t id) {
    const std::string path = state_path(id);
    const std::optional<std::string> text = read_file_text(path);
    if (!text)
        throw Error("no state file " + path + ": device " + std::to_string(id) + " was not attached by unbd here",
                    ENOENT, Failure::NoDevice);
    return parse_state(*text, path);
}

void remove_state(uint32_t id) noexcept { ::unlink(state_path(id).c_str()); }

std::vector<uint32_t> state_ids() {
    std::vector<uint32_t> ids;
    for (const std::string& dir : readable_state_dirs()) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const fs::path& p = entry.path();
            if (p.extension() != ".json") continue;
            const std::string stem = p.stem().string();
            if (stem.empty() || stem.size() > 9 || stem.find_first_not_of("0123456789") != std::string::npos) continue;
            ids.push_back(static_cast<uint32_t>(std::stoul(stem)));
        }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

std::vector<DeviceState> all_states(std::vector<std::string>* unreadable) {
    std::vector<DeviceState> out;
    for (const uint32_t id : state_ids()) {
        try {
            out.push_back(load_state(id));
        } catch (const Error& e) {
            if (unreadable != nullptr && e.kind() != Failure::NoDevice) unreadable->push_back(e.what());
        }
    }
    return out;
}

}  // namespace unbd::daemon
