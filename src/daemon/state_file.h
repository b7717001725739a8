// State files: one JSON file per attached device, <state dir>/<id>.json,
// beside the daemon's control socket <id>.sock. The state dir is the
// device owner's: /run/unbd for root's devices, $XDG_RUNTIME_DIR/unbd
// (/run/user/UID/unbd) for an ordinary user's unprivileged ones, so no user
// can plant files another user's daemon would trust. Root also reads every
// user's, to list and detach their devices. UNBD_STATE_DIR overrides the
// directory (tests), and then it is the only one. They keep what the kernel
// does not know -- the URI, the daemon's pid, the zero-copy mode -- for
// `unbd list`, `unbd detach` and a later `unbd recover`.
// Written atomically (temp file + rename) by the daemon once the device is
// live, removed by the daemon (or by `detach` when the daemon is dead).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace unbd::daemon {

// The state file format; a file from a newer unbd is refused, not guessed at.
inline constexpr int kStateVersion = 1;

struct DeviceState {
    uint32_t id = 0;
    std::string dev;  // /dev/ublkbN
    std::string uri;
    std::string name;  // --name: udev links /dev/unbd/NAME (daemon/udev_names.h); may be empty
    uint64_t size_bytes = 0;
    unsigned queues = 1;
    unsigned depth = 128;
    std::string zero_copy;         // "auto-buf-reg/send_recv_fixed", "off/read_write_fixed"
    std::string zero_copy_reason;
    // "ktls (TLSv1.2, psk, ...)" / "userspace (...)" as the first connection
    // negotiated it (reconnects keep the mode: it is in the URI); "" without
    // TLS, null in the JSON.
    std::string tls;
    bool read_only = false;
    uint32_t logical_block_size = 512;
    // The daemon's pid as its own pid namespace sees it: for display only
    // (a daemon in a container may be pid 1). Who the daemon is, is its
    // control socket (daemon/control_socket.h); pid_ns and pid_start say
    // where this pid means the daemon (daemon/liveness.h; 0: an older unbd).
    int pid = 0;
    uint64_t pid_ns = 0;
    uint64_t pid_start = 0;
    // Kept current by the daemon while it runs (see nbd/redialer.h).
    std::string connection = "connected";  // connected / reconnecting / disconnected
    uint64_t reconnects = 0;
    std::string last_failure;
    std::string durability;                // replay / fail-flush / trust-server
    // What `unbd recover` needs to start a daemon like the first one.
    bool force_read_only = false;
    int64_t io_timeout_ms = 30'000;
    int64_t reconnect_timeout_ms = 300'000;  // -1: infinite
    uint64_t durability_log_bytes = 64ull << 20;
    std::string on_daemon_loss = "hold";     // hold / fail
    int64_t resize_check_ms = 0;             // 0: off
    std::string metrics;                     // --metrics as bound ("127.0.0.1:9100"); "" = off
    uint32_t owner_uid = 0;                  // not 0: an unprivileged device of that user
    // The last resize (`unbd resize` waits for resize_seq to change).
    uint64_t resize_seq = 0;
    bool resize_ok = true;
    std::string resize_result;

    // The object `attach --json` prints and the file holds.
    nlohmann::json to_json() const;
    static DeviceState from_json(const nlohmann::json& j);  // throws on a bad or newer file
};

// This user's state dir (where its daemons write).
std::string state_dir();
// Creates it if need be (0755 for root, 0700 for a user); throws Error
// naming what to do when it cannot (a user without /run/user/UID).
void ensure_state_dir();
// The directories state is read from: this user's; for root also every
// /run/user/*/unbd.
std::vector<std::string> readable_state_dirs();
// Where device id's state file is: this user's dir if it has one; else, for
// root, the dir of the device's owner (the kernel's owner_uid) -- or any
// user's dir when the device no longer exists; else this user's dir.
std::string state_path(uint32_t id);
// The uid that owns device id's state file (root trusts a user's file only
// for that user's device); nullopt when there is none.
std::optional<uint32_t> state_file_owner(uint32_t id);

void write_state(const DeviceState& state);  // throws Error
bool state_file_exists(uint32_t id);
std::optional<DeviceState> read_state(uint32_t id);  // nullopt: no file or unreadable
// Throws Error saying what is wrong: no file (Failure::NoDevice), or a
// corrupt file or one from a newer unbd (Failure::Failed, with what to do).
DeviceState load_state(uint32_t id);
// The text of the state file at `path` (named in errors); throws Error
// (EINVAL) saying what is wrong with it and what to do. Pure (state_json.cpp).
DeviceState parse_state(const std::string& text, const std::string& path);
void remove_state(uint32_t id) noexcept;
// The ids of every state file, readable or not, sorted.
std::vector<uint32_t> state_ids();
// Every readable state file, sorted by id; `unreadable` (if given) gets one
// line per file that is not (list warns, detach --all refuses them).
std::vector<DeviceState> all_states(std::vector<std::string>* unreadable = nullptr);

}  // namespace unbd::daemon
