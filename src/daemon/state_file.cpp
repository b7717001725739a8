// State files on disk: where they live, atomic writes, reading them back.
// The JSON form itself is in state_json.cpp (pure).
#include "daemon/state_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace unbd::daemon {

namespace fs = std::filesystem;

std::string state_dir() {
    const char* env = std::getenv("UNBD_STATE_DIR");
    return env != nullptr && *env != '\0' ? env : "/run/unbd";
}

std::string state_path(uint32_t id) { return state_dir() + "/" + std::to_string(id) + ".json"; }

void write_state(const DeviceState& state) {
    const std::string dir = state_dir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir + ": " + ec.message());
    const std::string path = state_path(state.id);
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
    std::ifstream in(state_path(id));
    if (!in) return std::nullopt;
    try {
        return DeviceState::from_json(nlohmann::json::parse(in));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

DeviceState load_state(uint32_t id) {
    const std::string path = state_path(id);
    std::ifstream in(path);
    if (!in)
        throw Error("no state file " + path + ": device " + std::to_string(id) + " was not attached by unbd here",
                    ENOENT, Failure::NoDevice);
    std::ostringstream text;
    text << in.rdbuf();
    return parse_state(text.str(), path);
}

void remove_state(uint32_t id) noexcept { ::unlink(state_path(id).c_str()); }

std::vector<uint32_t> state_ids() {
    std::vector<uint32_t> ids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(state_dir(), ec)) {
        const fs::path& p = entry.path();
        if (p.extension() != ".json") continue;
        const std::string stem = p.stem().string();
        if (stem.empty() || stem.size() > 9 || stem.find_first_not_of("0123456789") != std::string::npos) continue;
        ids.push_back(static_cast<uint32_t>(std::stoul(stem)));
    }
    std::sort(ids.begin(), ids.end());
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
