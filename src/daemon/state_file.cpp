#include "daemon/state_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace unbd::daemon {

namespace fs = std::filesystem;

namespace {

// nlohmann's parse errors are long; the first line is the useful part.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

nlohmann::json DeviceState::to_json() const {
    return nlohmann::json{{"version", kStateVersion},
                          {"id", id},
                          {"dev", dev},
                          {"uri", uri},
                          {"size_bytes", size_bytes},
                          {"queues", queues},
                          {"depth", depth},
                          {"zero_copy", zero_copy},
                          {"zero_copy_reason", zero_copy_reason},
                          {"read_only", read_only},
                          {"logical_block_size", logical_block_size},
                          {"pid", pid},
                          {"connection", connection},
                          {"reconnects", reconnects},
                          {"last_failure", last_failure},
                          {"durability", durability},
                          {"options",
                           {{"force_read_only", force_read_only},
                            {"io_timeout_ms", io_timeout_ms},
                            {"reconnect_timeout_ms", reconnect_timeout_ms},
                            {"durability_log_bytes", durability_log_bytes},
                            {"on_daemon_loss", on_daemon_loss},
                            {"resize_check_ms", resize_check_ms}}},
                          {"resize", {{"seq", resize_seq}, {"ok", resize_ok}, {"result", resize_result}}}};
}

DeviceState DeviceState::from_json(const nlohmann::json& j) {
    DeviceState s;
    if (j.value("version", 1) > kStateVersion)
        throw Error("state file version " + std::to_string(j.value("version", 1)) +
                    " is from a newer unbd (this one reads " + std::to_string(kStateVersion) + ")");
    s.id = j.at("id").get<uint32_t>();
    s.dev = j.at("dev").get<std::string>();
    s.uri = j.value("uri", "");
    s.size_bytes = j.value("size_bytes", uint64_t{0});
    s.queues = j.value("queues", 1u);
    s.depth = j.value("depth", 128u);
    s.zero_copy = j.value("zero_copy", "");
    s.zero_copy_reason = j.value("zero_copy_reason", "");
    s.read_only = j.value("read_only", false);
    s.logical_block_size = j.value("logical_block_size", 512u);
    s.pid = j.value("pid", 0);
    s.connection = j.value("connection", "connected");
    s.reconnects = j.value("reconnects", uint64_t{0});
    s.last_failure = j.value("last_failure", "");
    s.durability = j.value("durability", "");
    const nlohmann::json o = j.value("options", nlohmann::json::object());
    s.force_read_only = o.value("force_read_only", false);
    s.io_timeout_ms = o.value("io_timeout_ms", int64_t{30'000});
    s.reconnect_timeout_ms = o.value("reconnect_timeout_ms", int64_t{300'000});
    s.durability_log_bytes = o.value("durability_log_bytes", uint64_t{64} << 20);
    s.on_daemon_loss = o.value("on_daemon_loss", "hold");
    s.resize_check_ms = o.value("resize_check_ms", int64_t{0});
    const nlohmann::json r = j.value("resize", nlohmann::json::object());
    s.resize_seq = r.value("seq", uint64_t{0});
    s.resize_ok = r.value("ok", true);
    s.resize_result = r.value("result", "");
    return s;
}

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
    try {
        return DeviceState::from_json(nlohmann::json::parse(in));
    } catch (const Error& e) {
        throw Error(path + ": " + e.what() + ": use that unbd for device " + std::to_string(id), EINVAL);
    } catch (const std::exception& e) {
        throw Error(path + " is corrupt (" + first_line(e.what()) + "): if no unbd daemon serves device " +
                        std::to_string(id) + " any more, remove the file",
                    EINVAL);
    }
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
