#include "ublk/control_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace unbd::ublk {

namespace P = proto::ublk;
using namespace std::chrono_literals;

namespace {

Fd open_control() {
    int fd = ::open(P::kControlPath, O_RDWR | O_CLOEXEC);
    if (fd >= 0) return Fd(fd);
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
        throw Error("ublk is not available: load it with 'modprobe ublk_drv' "
                    "(kernel 6.0+ with CONFIG_BLK_DEV_UBLK)", err);
    }
    if (err == EACCES || err == EPERM) {
        throw Error(std::string("cannot open ") + P::kControlPath +
                        ": permission denied (run unbd as root; for ordinary users the administrator "
                        "must open it to them once: see README, Unprivileged devices)",
                    err);
    }
    throw Error(errno_text(std::string("cannot open ") + P::kControlPath, err), err);
}

}  // namespace

std::string block_device_path(uint32_t dev_id) { return P::kBlockDevPrefix + std::to_string(dev_id); }
std::string char_device_path(uint32_t dev_id) { return P::kCharDevPrefix + std::to_string(dev_id); }

const char* state_name(uint16_t state) {
    switch (static_cast<P::DevState>(state)) {
        case P::DevState::Dead: return "dead";
        case P::DevState::Live: return "live";
        case P::DevState::Quiesced: return "quiesced";
        case P::DevState::FailIo: return "fail-io";
    }
    return "unknown";
}

ControlDevice::ControlDevice() : fd_(open_control()) {
    uring::RingOptions o;
    o.entries = 4;
    o.sqe128 = true;
    ring_ = std::make_unique<uring::Ring>(o);
}

int ControlDevice::run(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint64_t data,
                       std::chrono::seconds timeout, const char* name) {
    if (!needs_path(op, dev_id)) return submit(op, dev_id, buf, len, 0, data, timeout, name);
    const std::string path = char_device_path(dev_id);
    char* staged = scratch_->with_path;
    static_assert(sizeof(Scratch::with_path) >= 64 + sizeof(Params));
    std::memcpy(staged, path.data(), path.size());
    if (len > 0) std::memcpy(staged + path.size(), buf, len);
    const auto path_len = static_cast<uint16_t>(path.size());
    const int ret = submit(op, dev_id, staged, static_cast<uint16_t>(path_len + len), path_len, data, timeout, name);
    if (ret >= 0 && len > 0) std::memcpy(buf, staged + path_len, len);
    return ret;
}

bool ControlDevice::needs_path(uint32_t op, uint32_t dev_id) {
    if (op == P::UBLK_U_CMD_ADD_DEV || op == P::UBLK_U_CMD_GET_FEATURES || dev_id == P::kDevIdAuto) return false;
    if (const auto it = needs_path_.find(dev_id); it != needs_path_.end()) return it->second;
    // Without a path the kernel answers EINVAL for an unprivileged device
    // (dev_path_len is 0), and EPERM for a privileged one when we are not root.
    const int ret = submit(P::UBLK_U_CMD_GET_DEV_INFO, dev_id, &scratch_->probe, sizeof(DevInfo), 0, 0,
                           std::chrono::seconds(10), "GET_DEV_INFO");
    if (ret == -ENODEV || ret == -ETIMEDOUT) return false;  // nothing learned
    return needs_path_[dev_id] = ret == -EINVAL;
}

int ControlDevice::submit(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint16_t path_len, uint64_t data,
                          std::chrono::seconds timeout, const char* name) {
    if (poisoned_) return -EBUSY;
    io_uring_sqe* sqe = ring_->get_sqe();
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd_.get();
    sqe->cmd_op = op;
    P::ublksrv_ctrl_cmd cmd{};
    cmd.dev_id = dev_id;
    cmd.queue_id = P::kQueueIdNone;
    cmd.len = len;
    cmd.addr = reinterpret_cast<uintptr_t>(buf);
    cmd.data[0] = data;
    cmd.dev_path_len = path_len;
    std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
    sqe->user_data = op;

    int ret = ring_->submit();
    if (ret < 0) return ret;
    __kernel_timespec ts{};
    ts.tv_sec = timeout.count();
    io_uring_cqe* cqe = nullptr;
    ret = io_uring_wait_cqe_timeout(ring_->raw(), &cqe, &ts);
    if (ret == -ETIME) {
        poisoned_ = true;
        spdlog::error("ublk {} on device {} did not finish within {} s", name, dev_id, timeout.count());
        return -ETIMEDOUT;
    }
    if (ret < 0) return ret;
    ret = cqe->res;
    io_uring_cqe_seen(ring_->raw(), cqe);
    spdlog::debug("ublk {} dev {} -> {}", name, dev_id, ret);
    return ret;
}

int ControlDevice::run_checked(uint32_t op, uint32_t dev_id, void* buf, uint16_t len, uint64_t data,
                               std::chrono::seconds timeout, const char* name) {
    const int ret = run(op, dev_id, buf, len, data, timeout, name);
    if (ret >= 0) return ret;
    std::string what = std::string("ublk ") + name;
    if (dev_id != P::kDevIdAuto) what += " for device " + std::to_string(dev_id);
    if (ret == -ETIMEDOUT) throw Error(what + " timed out after " + std::to_string(timeout.count()) + " s", -ret);
    if (ret == -EPERM && ::geteuid() != 0)
        throw Error(what + ": permission denied (it is root's device: run unbd as root)", EPERM);
    if (ret == -EACCES && ::geteuid() != 0)
        throw Error(what + ": permission denied (the device belongs to another user; its owner or root may use it)",
                    EACCES);
    if (ret == -EPERM || ret == -EACCES) throw Error(what + ": permission denied", -ret);
    throw Error(errno_text(what, ret), -ret);
}

uint64_t ControlDevice::features() {
    const int ret = run(P::UBLK_U_CMD_GET_FEATURES, 0, &scratch_->features, P::kFeaturesLen, 0, 10s,
                        "GET_FEATURES");
    if (ret == -EINVAL || ret == -EOPNOTSUPP || ret == -ENOTTY) {
        throw Error("kernel too old: ublk here lacks GET_FEATURES and ioctl-encoded commands "
                    "(Linux 6.5 or newer needed)", -ret);
    }
    if (ret < 0) check_errno(ret, "ublk GET_FEATURES");
    return scratch_->features;
}

DevInfo ControlDevice::add(const DevInfo& info) {
    scratch_->info = info;
    run_checked(P::UBLK_U_CMD_ADD_DEV, info.dev_id, &scratch_->info, sizeof(DevInfo), 0, 30s, "ADD_DEV");
    needs_path_[scratch_->info.dev_id] = (scratch_->info.flags & P::UBLK_F_UNPRIVILEGED_DEV) != 0;
    return scratch_->info;
}

void ControlDevice::set_params(uint32_t dev_id, const Params& params) {
    scratch_->params = params;
    scratch_->params.len = sizeof(Params);
    run_checked(P::UBLK_U_CMD_SET_PARAMS, dev_id, &scratch_->params, sizeof(Params), 0, 10s, "SET_PARAMS");
}

Params ControlDevice::get_params(uint32_t dev_id) {
    scratch_->params = Params{};
    scratch_->params.len = sizeof(Params);
    run_checked(P::UBLK_U_CMD_GET_PARAMS, dev_id, &scratch_->params, sizeof(Params), 0, 10s, "GET_PARAMS");
    return scratch_->params;
}

DevInfo ControlDevice::get_info(uint32_t dev_id) {
    scratch_->info = DevInfo{};
    run_checked(P::UBLK_U_CMD_GET_DEV_INFO, dev_id, &scratch_->info, sizeof(DevInfo), 0, 10s, "GET_DEV_INFO");
    return scratch_->info;
}

std::optional<DevInfo> ControlDevice::find(uint32_t dev_id) {
    try {
        return get_info(dev_id);
    } catch (const Error& e) {
        if (e.error_number() == ENODEV || e.error_number() == ENOENT) {
            needs_path_.erase(dev_id);  // its id may come back as another device
            return std::nullopt;
        }
        throw;
    }
}

void ControlDevice::start(uint32_t dev_id, int daemon_pid) {
    // START_DEV also scans partitions, which reads through our queues.
    run_checked(P::UBLK_U_CMD_START_DEV, dev_id, nullptr, 0, static_cast<uint64_t>(daemon_pid), 60s,
                "START_DEV");
}

int ControlDevice::try_stop(uint32_t dev_id) noexcept {
    // STOP_DEV removes the disk and waits for in-flight I/O to drain.
    try {
        return run(P::UBLK_U_CMD_STOP_DEV, dev_id, nullptr, 0, 0, 60s, "STOP_DEV");
    } catch (...) {
        return -EIO;
    }
}

int ControlDevice::try_remove(uint32_t dev_id) noexcept {
    try {
        const int ret = run(P::UBLK_U_CMD_DEL_DEV, dev_id, nullptr, 0, 0, 30s, "DEL_DEV");
        if (ret >= 0) needs_path_.erase(dev_id);
        return ret;
    } catch (...) {
        return -EIO;
    }
}

int ControlDevice::try_remove_async(uint32_t dev_id) noexcept {
    try {
        // Unprivileged devices get EINVAL too: the kernel's permission check
        // does not list DEL_DEV_ASYNC (ublk_drv.c of 6.13 and 7.x).
        const int ret = run(P::UBLK_U_CMD_DEL_DEV_ASYNC, dev_id, nullptr, 0, 0, 10s, "DEL_DEV_ASYNC");
        if (ret != -EINVAL && ret != -EOPNOTSUPP && ret != -ENOTTY) {
            if (ret >= 0) needs_path_.erase(dev_id);
            return ret;
        }
        return try_remove(dev_id);
    } catch (...) {
        return -EIO;
    }
}

void ControlDevice::start_user_recovery(uint32_t dev_id, std::chrono::seconds patience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
        const int ret = run(P::UBLK_U_CMD_START_USER_RECOVERY, dev_id, nullptr, 0, 0, 10s, "START_USER_RECOVERY");
        if (ret >= 0) return;
        if (ret != -EBUSY || std::chrono::steady_clock::now() > deadline) {
            if (ret == -EBUSY)
                throw Error("ublk device " + std::to_string(dev_id) + " is still busy after " +
                                std::to_string(patience.count()) + " s: its old daemon has not let go yet",
                            EBUSY);
            run_checked(P::UBLK_U_CMD_START_USER_RECOVERY, dev_id, nullptr, 0, 0, 10s, "START_USER_RECOVERY");
            return;
        }
        std::this_thread::sleep_for(100ms);
    }
}

void ControlDevice::end_user_recovery(uint32_t dev_id, int daemon_pid) {
    run_checked(P::UBLK_U_CMD_END_USER_RECOVERY, dev_id, nullptr, 0, static_cast<uint64_t>(daemon_pid), 60s,
                "END_USER_RECOVERY");
}

int ControlDevice::quiesce(uint32_t dev_id, uint32_t timeout_ms) noexcept {
    try {
        return run(P::UBLK_U_CMD_QUIESCE_DEV, dev_id, nullptr, 0, timeout_ms,
                   std::chrono::seconds(timeout_ms / 1000 + 10), "QUIESCE_DEV");
    } catch (...) {
        return -EIO;
    }
}

void ControlDevice::update_size(uint32_t dev_id, uint64_t sectors) {
    run_checked(P::UBLK_U_CMD_UPDATE_SIZE, dev_id, nullptr, 0, sectors, 10s, "UPDATE_SIZE");
}

Device::~Device() {
    if (!owned_) return;
    // Best effort: STOP may fail on a never-started device; DEL still works.
    control_->try_stop(dev_id_);
    const int ret = control_->try_remove(dev_id_);
    if (ret < 0) spdlog::warn("could not delete ublk device {}: {}", dev_id_, std::strerror(-ret));
}

}  // namespace unbd::ublk
