// AttachPlan: everything `unbd attach` decides before a device exists --
// done in the calling process, so a wrong URI, an unreachable server or a
// kernel without ublk is reported synchronously, before any fork.
//
//   1. ublk present? features (GET_FEATURES) -> too-old errors; not root:
//      an unprivileged device, and what it cannot do (daemon/unprivileged.h)
//   2. connect the first connection; queues = -q, else 1 without
//      CAN_MULTI_CONN, else min(CPUs, 4)
//   3. connect the others; each must see the same size and flags
//   4. map the export onto device parameters; pick the zero-copy mode
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/http_endpoint.h"
#include "nbd/connect.h"
#include "nbd/durability_log.h"
#include "nbd/uri.h"
#include "daemon/state_file.h"
#include "ublk/control_device.h"
#include "ublk/device_params.h"
#include "ublk/zero_copy.h"

namespace unbd::daemon {

// What the kernel does with I/O while no daemon serves the device (the
// daemon crashed, or is being replaced): hold it until `unbd recover`, or
// fail it at once (UBLK_F_USER_RECOVERY_FAIL_IO, 6.13+).
enum class DaemonLoss { Hold, Fail };

struct AttachOptions {
    std::string uri_text;
    std::string name;                   // --name: /dev/unbd/NAME (daemon/udev_names.h)
    std::optional<uint32_t> dev_id;     // -n
    std::optional<unsigned> queues;     // -q
    unsigned depth = 128;               // -d
    bool read_only = false;
    ublk::ZeroCopyRequest zero_copy = ublk::ZeroCopyRequest::Auto;
    uint32_t buffer_bytes = 512 << 10;  // per tag: the largest request
    std::optional<nbd::PayloadOps> payload_ops;  // --payload-ops (testing, tuning)
    // Reconnect (see nbd/redialer.h, nbd/reconnecting_session.h).
    std::chrono::milliseconds io_timeout{30'000};                // --io-timeout; 0 = never
    std::optional<std::chrono::milliseconds> reconnect_timeout{std::chrono::seconds(300)};  // nullopt = inf
    std::optional<nbd::Durability> durability;                   // default: replay when the server has FLUSH
    uint64_t durability_log_bytes = 64ull << 20;                 // per device
    DaemonLoss on_daemon_loss = DaemonLoss::Hold;
    std::chrono::milliseconds resize_check{0};                   // --resize-check; 0 = off
    std::optional<ListenAddress> metrics;                        // --metrics (daemon/metrics.h)
    // Serve the existing, quiesced device dev_id instead of making one
    // (`unbd recover`); queues, depth and zero copy come from the device.
    bool recover = false;
    // --unprivileged: insist on an unprivileged device (daemon/unprivileged.h);
    // a non-root user gets one anyway.
    bool unprivileged = false;
};

struct AttachPlan {
    AttachOptions options;
    nbd::Uri uri;
    uint64_t features = 0;
    std::vector<nbd::Connection> connections;  // one per queue
    ublk::DeviceParams params;
    ublk::CommandSupport commands;
    ublk::ZeroCopyChoice zero_copy;
    nbd::Durability durability = nbd::Durability::TrustServer;  // what the log does
    nbd::ConnectOptions connect;        // as used, for reconnecting
    ublk::DevInfo device{};             // recover: the existing device (GET_DEV_INFO)
    bool unprivileged = false;          // make a UBLK_F_UNPRIVILEGED_DEV device (not root)
    std::vector<std::string> warnings;  // for stderr
};

// Throws unbd::Error with a reason a person can act on.
AttachPlan plan_attach(const AttachOptions& options);

// The options a device was attached with, from its state file, set up to
// recover it.
AttachOptions recovery_options(const DeviceState& state);

// The durability mode for an export: the one asked for, else replay when
// the server has a write cache (SEND_FLUSH), else none is needed. Pure.
nbd::Durability choose_durability(std::optional<nbd::Durability> requested, bool can_flush);

// The queue count when the user gave none, and the warning when they asked
// for more than the server allows. Pure, for unit tests.
unsigned choose_queue_count(std::optional<unsigned> requested, bool multi_conn, unsigned cpus,
                            std::string* warning);

}  // namespace unbd::daemon
