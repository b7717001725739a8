// The control socket's protocol (daemon/control_socket.h carries it):
// one request per connection, one JSON object on one line each way.
//
//   {"cmd":"ping"}                      -> {"ok":true,"pid":P,"id":N,"dev":"/dev/ublkbN"}
//   {"cmd":"stats"}                     -> {"ok":true,"stats":{...}}   (DeviceStats)
//   {"cmd":"detach"}                    -> {"ok":true}  then the daemon detaches
//   {"cmd":"restart"}                   -> {"ok":true}  then it hands the device over
//   {"cmd":"resize","allow_shrink":B}   -> {"ok":true}  the outcome lands in the state file
//   anything wrong                      -> {"ok":false,"error":"one line"}
//
// "pid" is the daemon's pid in its own namespace, for the log; a client
// takes the pid it may use from SO_PEERCRED. Unknown fields are ignored,
// so either side may add some. Pure (no I/O): unit tests and fuzzers link it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ublk/io_stats.h"

namespace unbd::daemon {

// A line longer than this is refused (a request is tiny; stats are a few KiB).
inline constexpr std::size_t kMaxControlLine = 64 * 1024;

enum class ControlCommand { Ping, Stats, Detach, Restart, Resize };
const char* name(ControlCommand c);

struct ControlRequest {
    ControlCommand cmd = ControlCommand::Ping;
    bool allow_shrink = false;  // resize only
};

// One line, '\n' included.
std::string encode_request(const ControlRequest& r);
// A request line (with or without its '\n'); throws Error (EINVAL) saying
// what is wrong with it.
ControlRequest parse_request(const std::string& line);

// Replies. encode_* return one line, '\n' included.
std::string encode_ok(nlohmann::json fields = nlohmann::json::object());
std::string encode_error(const std::string& message);
// A reply line: the object when "ok" is true; throws Error with the
// daemon's own message when it is false, or saying the reply is malformed.
nlohmann::json parse_reply(const std::string& line);

// What `unbd stats` shows.
struct DeviceStats {
    uint32_t id = 0;
    std::string dev;
    uint64_t size_bytes = 0;
    std::string connection;  // connected / reconnecting / disconnected
    uint64_t reconnects = 0;
    std::string last_failure;
    ublk::IoStats total;               // summed over the queues
    std::vector<ublk::IoStats> queues;  // one per queue
};
nlohmann::json to_json(const DeviceStats& s);
// Throws Error (EINVAL) naming the field that is missing or wrong.
DeviceStats stats_from_json(const nlohmann::json& j);

}  // namespace unbd::daemon
