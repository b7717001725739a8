// The control socket's JSON lines (control_protocol.h). Pure.
#include "daemon/control_protocol.h"

#include <cerrno>
#include <exception>

#include "common/error.h"

namespace unbd::daemon {

namespace {

constexpr ControlCommand kCommands[] = {ControlCommand::Ping, ControlCommand::Stats, ControlCommand::Detach,
                                        ControlCommand::Restart, ControlCommand::Resize};

nlohmann::json parse_object(const std::string& line, const char* what) {
    if (line.size() > kMaxControlLine) throw Error(std::string(what) + " is longer than 64 KiB", EINVAL);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
        throw Error(std::string(what) + " is not JSON", EINVAL);
    }
    if (!j.is_object()) throw Error(std::string(what) + " is not a JSON object", EINVAL);
    return j;
}

// An unsigned number, or an Error naming the field (nlohmann would cast
// a float or a negative number silently).
// optional: a daemon from an older unbd may not send it (0 then).
uint64_t count(const nlohmann::json& j, const char* key, bool optional = false) {
    const auto it = j.find(key);
    if (optional && it == j.end()) return 0;
    if (it == j.end() || !it->is_number_unsigned())
        throw Error(std::string("stats: '") + key + "' is missing or not a count", EINVAL);
    return it->get<uint64_t>();
}

std::string text(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end()) return "";
    if (!it->is_string()) throw Error(std::string("stats: '") + key + "' is not a string", EINVAL);
    return it->get<std::string>();
}

nlohmann::json io_json(const ublk::IoStats& s) {
    return {{"reads", s.reads},         {"writes", s.writes},     {"read_bytes", s.read_bytes},
            {"written_bytes", s.written_bytes}, {"flushes", s.flushes}, {"discards", s.discards},
            {"errors", s.errors},       {"in_flight", s.in_flight}, {"waits", s.waits},
            {"held_waits", s.held_waits}};
}

ublk::IoStats io_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error("stats: I/O counters are not an object", EINVAL);
    ublk::IoStats s;
    s.reads = count(j, "reads");
    s.writes = count(j, "writes");
    s.read_bytes = count(j, "read_bytes");
    s.written_bytes = count(j, "written_bytes");
    s.flushes = count(j, "flushes");
    s.discards = count(j, "discards");
    s.errors = count(j, "errors");
    s.in_flight = count(j, "in_flight");
    s.waits = count(j, "waits", true);
    s.held_waits = count(j, "held_waits", true);
    return s;
}

}  // namespace

const char* name(ControlCommand c) {
    switch (c) {
        case ControlCommand::Ping: return "ping";
        case ControlCommand::Stats: return "stats";
        case ControlCommand::Detach: return "detach";
        case ControlCommand::Restart: return "restart";
        case ControlCommand::Resize: return "resize";
    }
    return "?";
}

std::string encode_request(const ControlRequest& r) {
    nlohmann::json j{{"cmd", name(r.cmd)}};
    if (r.cmd == ControlCommand::Resize) j["allow_shrink"] = r.allow_shrink;
    return j.dump() + "\n";
}

ControlRequest parse_request(const std::string& line) {
    const nlohmann::json j = parse_object(line, "the request");
    const auto cmd = j.find("cmd");
    if (cmd == j.end() || !cmd->is_string()) throw Error("the request has no \"cmd\" string", EINVAL);
    ControlRequest r;
    bool known = false;
    for (const ControlCommand c : kCommands) {
        if (cmd->get<std::string>() == name(c)) {
            r.cmd = c;
            known = true;
        }
    }
    if (!known) throw Error("unknown command '" + cmd->get<std::string>() + "'", EINVAL);
    if (const auto shrink = j.find("allow_shrink"); shrink != j.end()) {
        if (!shrink->is_boolean()) throw Error("\"allow_shrink\" is not true or false", EINVAL);
        r.allow_shrink = shrink->get<bool>();
    }
    return r;
}

std::string encode_ok(nlohmann::json fields) {
    if (!fields.is_object()) fields = nlohmann::json::object();
    fields["ok"] = true;
    return fields.dump() + "\n";
}

std::string encode_error(const std::string& message) {
    // dump() escapes newlines: the reply stays one line whatever the message.
    return nlohmann::json{{"ok", false}, {"error", message}}.dump() + "\n";
}

nlohmann::json parse_reply(const std::string& line) {
    nlohmann::json j = parse_object(line, "the daemon's reply");
    const auto ok = j.find("ok");
    if (ok == j.end() || !ok->is_boolean()) throw Error("the daemon's reply has no \"ok\"", EINVAL);
    if (!ok->get<bool>()) {
        const auto err = j.find("error");
        throw Error("the daemon says: " + (err != j.end() && err->is_string() ? err->get<std::string>()
                                                                               : std::string("(no reason given)")));
    }
    return j;
}

nlohmann::json to_json(const DeviceStats& s) {
    nlohmann::json queues = nlohmann::json::array();
    for (const auto& q : s.queues) queues.push_back(io_json(q));
    return {{"id", s.id},
            {"dev", s.dev},
            {"size_bytes", s.size_bytes},
            {"connection", s.connection},
            {"reconnects", s.reconnects},
            {"last_failure", s.last_failure},
            {"io", io_json(s.total)},
            {"queues", queues}};
}

DeviceStats stats_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error("stats: not a JSON object", EINVAL);
    DeviceStats s;
    const uint64_t id = count(j, "id");
    if (id > UINT32_MAX) throw Error("stats: 'id' is out of range", EINVAL);
    s.id = static_cast<uint32_t>(id);
    s.dev = text(j, "dev");
    s.size_bytes = count(j, "size_bytes");
    s.connection = text(j, "connection");
    s.reconnects = count(j, "reconnects");
    s.last_failure = text(j, "last_failure");
    const auto io = j.find("io");
    if (io == j.end()) throw Error("stats: 'io' is missing", EINVAL);
    s.total = io_from_json(*io);
    if (const auto qs = j.find("queues"); qs != j.end()) {
        if (!qs->is_array()) throw Error("stats: 'queues' is not an array", EINVAL);
        for (const auto& q : *qs) s.queues.push_back(io_from_json(q));
    }
    return s;
}

}  // namespace unbd::daemon
