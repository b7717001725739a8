// Unprivileged devices (UBLK_F_UNPRIVILEGED_DEV, Linux 6.5+ with
// GET_FEATURES): an ordinary user attaches a disk without root. unbd makes
// one whenever it runs as a non-root user (`--unprivileged` says so
// explicitly; root cannot: the kernel drops the flag for CAP_SYS_ADMIN).
//
// What the kernel does differently for such a device (ublk_drv.c):
//   - every control command but ADD_DEV carries /dev/ublkcN, and the caller
//     needs read (GET_*) or read+write (the rest) on that node: udev must
//     give the node to the owner (udev/60-unbd.rules, `unbd udev-env`)
//     before SET_PARAMS, so the daemon waits for it after ADD_DEV;
//   - only the owner (uid and gid) and root may open /dev/ublkbN;
//   - no USER_RECOVERY (dropped silently): the device dies with its daemon,
//     so no `unbd recover` or `unbd restart`;
//   - no zero copy (AUTO_BUF_REG, USER_COPY, SUPPORT_ZERO_COPY: EINVAL):
//     copy mode only;
//   - a request older than the block layer's timeout (30 s unless root
//     changes /sys/block/ublkbN/queue/io_timeout) gets the daemon SIGKILLed
//     and the device removed. So unbd must answer every request sooner:
//     --io-timeout + --reconnect-timeout must stay below it (defaults for
//     unprivileged devices: 10 s + 15 s); a server down for longer fails
//     I/O with EIO instead of losing the disk;
//   - partitions are not scanned; DEL_DEV_ASYNC is refused (plain DEL_DEV).
//
// The administrator opens /dev/ublk-control to the users once (README).
#pragma once

#include <chrono>
#include <cstdint>

#include "daemon/attach_plan.h"

namespace unbd::daemon {

inline constexpr std::chrono::milliseconds kUnprivilegedIoTimeout{10'000};
inline constexpr std::chrono::milliseconds kUnprivilegedReconnectTimeout{15'000};
// The kernel's default request timeout (blk-mq, 30 s), less a margin for
// the failing request's round trip through the queue.
inline constexpr std::chrono::milliseconds kUnprivilegedRequestBudget{27'000};

// Whether this process makes unprivileged devices (not root).
bool making_unprivileged_devices();

// Checks what an unprivileged device cannot do, against the kernel's
// features; throws a usage error (or Error) naming the option and why.
// Returns the zero-copy request to use (always Off).
ublk::ZeroCopyRequest check_unprivileged(const AttachOptions& options, uint64_t features);

// After ADD_DEV: waits (bounded) until udev has given /dev/ublkcN to us.
// Throws Error saying what the administrator must install.
void wait_for_own_char_node(uint32_t dev_id, std::chrono::seconds patience);

// Once the disk exists: logs a warning when its request timeout (root may
// have lowered /sys/block/ublkbN/queue/io_timeout) is shorter than the
// longest a request can wait in unbd.
void warn_if_kernel_timeout_short(uint32_t dev_id, const AttachOptions& options);

}  // namespace unbd::daemon
