// ControlDevice: /dev/ublk-control, driven by URING_CMDs on a private
// SQE128 ring. One command at a time, each wait bounded: a stuck kernel
// (ADD_DEV on buggy kernels, DEL_DEV while the disk is open) becomes an
// Error, never a hang. Not thread-safe: the creating thread issues all
// commands (the ring is SINGLE_ISSUER).
//
// Unprivileged devices (UBLK_F_UNPRIVILEGED_DEV, made by a non-root user):
// every command but ADD_DEV must carry the device's char node path in
// front of its buffer, and the kernel checks the caller's rights on that
// node (ublk_ctrl_uring_cmd_permission). ControlDevice learns per device
// whether it needs the path (from ADD_DEV, else by asking once) and adds
// it, so callers never see the difference.
//
// Device: RAII for one ublk device. Its destructor stops and deletes the
// device unless release() was called (the daemon hand-off), so a failed
// attach leaves nothing behind.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/fd.h"
#include "proto/ublk_uapi.h"
#include "uring/ring.h"

namespace unbd::ublk {

using DevInfo = proto::ublk::ublksrv_ctrl_dev_info;
using Params = proto::ublk::ublk_params;

// What unbd writes into DevInfo::ublksrv_flags at ADD_DEV ("UNBD", format 1).
// The kernel keeps it for the device's lifetime and returns it in
// GET_DEV_INFO, so unbd can tell its own devices from other ublk servers'
// even without a state file, and never detaches someone else's.
inline constexpr uint64_t kUnbdDeviceMark = 0x554e424400000001ull;

class ControlDevice {
public:
    // Throws an Error a person can act on when ublk is missing or we lack rights.
    ControlDevice();
    ControlDevice(const ControlDevice&) = delete;
    ControlDevice& operator=(const ControlDevice&) = delete;

    // UBLK_F_* the kernel supports. Throws "kernel too old" below 6.5.
    uint64_t features();

    // ADD_DEV: `info` in (queues, depth, max_io_buf_bytes, flags, dev_id or
    // kDevIdAuto), out as the kernel filled it (dev_id, granted flags).
    DevInfo add(const DevInfo& info);
    void set_params(uint32_t dev_id, const Params& params);
    Params get_params(uint32_t dev_id);
    DevInfo get_info(uint32_t dev_id);
    // GET_DEV_INFO, nullopt when there is no such device (ENODEV/ENOENT).
    std::optional<DevInfo> find(uint32_t dev_id);
    // START_DEV: every queue must already have its FETCHes submitted.
    void start(uint32_t dev_id, int daemon_pid);
    // -errno of a command without throwing (for best-effort cleanup).
    int try_stop(uint32_t dev_id) noexcept;
    int try_remove(uint32_t dev_id) noexcept;
    // DEL_DEV_ASYNC (6.9+): returns at once, the kernel deletes the device
    // when its last user closes it; plain DEL_DEV on older kernels.
    int try_remove_async(uint32_t dev_id) noexcept;

    // User recovery (UBLK_F_USER_RECOVERY, 6.1): a new daemon takes over a
    // device whose daemon died. START answers -EBUSY until the old process
    // fully released /dev/ublkcN (asynchronous with zero copy): retried up
    // to `patience`. END blocks until every queue's FETCHes are in.
    void start_user_recovery(uint32_t dev_id, std::chrono::seconds patience);
    void end_user_recovery(uint32_t dev_id, int daemon_pid);
    // QUIESCE_DEV (UBLK_F_QUIESCE, 6.16): the running daemon's queues are
    // quiesced and its FETCHes aborted; the device waits for a new daemon.
    // -errno (-EBUSY: I/O stayed in flight past timeout_ms).
    int quiesce(uint32_t dev_id, uint32_t timeout_ms) noexcept;
    // UPDATE_SIZE (UBLK_F_UPDATE_SIZE, 6.16): the disk's new capacity.
    void update_size(uint32_t dev_id, uint64_t sectors);

private:
    // Runs one command; for a device that needs it, with its char node path
    // in front of buf (the kernel strips it before the command sees buf).
    int run(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint64_t data,
            std::chrono::seconds timeout, const char* name);
    int run_checked(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint64_t data,
                    std::chrono::seconds timeout, const char* name);
    int submit(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint16_t path_len, uint64_t data,
               std::chrono::seconds timeout, const char* name);
    // Per device: does it need the path? Learned from ADD_DEV, or by asking.
    std::map<uint32_t, bool> needs_path_;
    bool needs_path(uint32_t op, uint32_t dev_id);

    Fd fd_;
    std::unique_ptr<uring::Ring> ring_;
    // Kernel-written buffers live here, not on a caller's stack: a command
    // that timed out may still complete into them later.
    struct Scratch {
        DevInfo info{};
        DevInfo probe{};  // needs_path()'s own, so it never clobbers a caller's
        Params params{};
        uint64_t features = 0;
        // Unprivileged devices: "/dev/ublkcN" followed by the payload.
        char with_path[64 + sizeof(Params)]{};
    };
    std::unique_ptr<Scratch> scratch_ = std::make_unique<Scratch>();
    bool poisoned_ = false;  // a command timed out: the ring may be busy
};

class Device {
public:
    Device(ControlDevice& control, uint32_t dev_id) : control_(&control), dev_id_(dev_id) {}
    Device(Device&& o) noexcept : control_(o.control_), dev_id_(o.dev_id_), owned_(o.owned_) { o.owned_ = false; }
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    Device& operator=(Device&&) = delete;
    ~Device();

    uint32_t id() const noexcept { return dev_id_; }
    // Keep the device after this object dies.
    void release() noexcept { owned_ = false; }

private:
    ControlDevice* control_;
    uint32_t dev_id_;
    bool owned_ = true;
};

std::string block_device_path(uint32_t dev_id);
std::string char_device_path(uint32_t dev_id);
const char* state_name(uint16_t state);

}  // namespace unbd::ublk
