// The JSON form of a state file (state_file.h): DeviceState to and from
// JSON, and the parse of a whole file's text. Pure: no files, so the
// fuzzer (tests/fuzz/state_file_fuzz.cpp) links it alone. Whatever the
// text, parse_state returns a DeviceState or throws unbd::Error.
#include <cerrno>
#include <exception>
#include <limits>
#include <utility>

#include "common/error.h"
#include "daemon/state_file.h"

namespace unbd::daemon {

namespace {

// A whole number that fits T, or an Error naming the field. nlohmann's
// get<T>() casts any number it finds: undefined behaviour for a float out
// of T's range, a silent wrap for a negative or too large integer (found by
// tests/fuzz/state_file_fuzz.cpp).
template <typename T>
T number(const nlohmann::json& obj, const char* key, T fallback) {
    const auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    const bool fits = it->is_number_unsigned()  ? std::in_range<T>(it->get<uint64_t>())
                      : it->is_number_integer() ? std::in_range<T>(it->get<int64_t>())
                                                : false;
    if (!fits)
        throw Error(std::string("'") + key + "' is " + it->dump() + ", not a whole number from " +
                    std::to_string(std::numeric_limits<T>::min()) + " to " +
                    std::to_string(std::numeric_limits<T>::max()));
    return it->get<T>();
}

}  // namespace

nlohmann::json DeviceState::to_json() const {
    return nlohmann::json{{"version", kStateVersion},
                          {"id", id},
                          {"dev", dev},
                          {"uri", uri},
                          {"name", name},
                          {"size_bytes", size_bytes},
                          {"queues", queues},
                          {"depth", depth},
                          {"zero_copy", zero_copy},
                          {"zero_copy_reason", zero_copy_reason},
                          {"tls", tls.empty() ? nlohmann::json(nullptr) : nlohmann::json(tls)},
                          {"read_only", read_only},
                          {"logical_block_size", logical_block_size},
                          {"pid", pid},
                          {"pid_ns", pid_ns},
                          {"pid_start", pid_start},
                          {"connection", connection},
                          {"reconnects", reconnects},
                          {"last_failure", last_failure},
                          {"durability", durability},
                          {"metrics", metrics},
                          {"owner_uid", owner_uid},
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
    if (!j.is_object()) throw Error("not a JSON object");
    if (const int version = number(j, "version", 1); version > kStateVersion)
        throw Error("state file version " + std::to_string(version) +
                    " is from a newer unbd (this one reads " + std::to_string(kStateVersion) + ")");
    if (!j.contains("id")) throw Error("no 'id'");
    s.id = number<uint32_t>(j, "id", 0);
    s.dev = j.at("dev").get<std::string>();
    s.uri = j.value("uri", "");
    s.name = j.value("name", "");
    s.size_bytes = number<uint64_t>(j, "size_bytes", 0);
    s.queues = number<unsigned>(j, "queues", 1);
    s.depth = number<unsigned>(j, "depth", 128);
    s.zero_copy = j.value("zero_copy", "");
    s.zero_copy_reason = j.value("zero_copy_reason", "");
    if (const auto t = j.find("tls"); t != j.end() && t->is_string()) s.tls = t->get<std::string>();
    s.read_only = j.value("read_only", false);
    s.logical_block_size = number<uint32_t>(j, "logical_block_size", 512);
    s.pid = number<int>(j, "pid", 0);
    s.pid_ns = number<uint64_t>(j, "pid_ns", 0);
    s.pid_start = number<uint64_t>(j, "pid_start", 0);
    s.connection = j.value("connection", "connected");
    s.reconnects = number<uint64_t>(j, "reconnects", 0);
    s.last_failure = j.value("last_failure", "");
    s.durability = j.value("durability", "");
    s.metrics = j.value("metrics", "");
    s.owner_uid = number<uint32_t>(j, "owner_uid", 0);
    const nlohmann::json o = j.value("options", nlohmann::json::object());
    s.force_read_only = o.value("force_read_only", false);
    s.io_timeout_ms = number<int64_t>(o, "io_timeout_ms", 30'000);
    s.reconnect_timeout_ms = number<int64_t>(o, "reconnect_timeout_ms", 300'000);
    s.durability_log_bytes = number<uint64_t>(o, "durability_log_bytes", uint64_t{64} << 20);
    s.on_daemon_loss = o.value("on_daemon_loss", "hold");
    s.resize_check_ms = number<int64_t>(o, "resize_check_ms", 0);
    const nlohmann::json r = j.value("resize", nlohmann::json::object());
    s.resize_seq = number<uint64_t>(r, "seq", 0);
    s.resize_ok = r.value("ok", true);
    s.resize_result = r.value("result", "");
    return s;
}

DeviceState parse_state(const std::string& text, const std::string& path) {
    try {
        return DeviceState::from_json(nlohmann::json::parse(text));
    } catch (const Error& e) {
        throw Error(path + ": " + e.what() + ": use that unbd for this device", EINVAL);
    } catch (const std::exception& e) {
        // nlohmann's parse errors are long; the first line is the useful part.
        const std::string what = e.what();
        throw Error(path + " is corrupt (" + what.substr(0, what.find('\n')) +
                        "): if no unbd daemon serves this device any more, remove the file",
                    EINVAL);
    }
}

}  // namespace unbd::daemon
