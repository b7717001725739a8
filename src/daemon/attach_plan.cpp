#include "daemon/attach_plan.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "daemon/udev_names.h"
#include "daemon/unprivileged.h"
#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"
#include "uring/probe.h"

namespace unbd::daemon {

namespace P = proto::ublk;

unsigned choose_queue_count(std::optional<unsigned> requested, bool multi_conn, unsigned cpus,
                            std::string* warning) {
    if (!multi_conn) {
        if (requested && *requested > 1 && warning != nullptr) {
            *warning = "the server does not allow several connections (no CAN_MULTI_CONN): using 1 queue, not " +
                       std::to_string(*requested);
        }
        return 1;
    }
    if (requested) return *requested;
    return std::clamp(cpus, 1u, 4u);
}

nbd::Durability choose_durability(std::optional<nbd::Durability> requested, bool can_flush) {
    // Without SEND_FLUSH the server is write-through: an acknowledged write
    // is stable and nothing can be lost, whatever was asked.
    if (!can_flush) return nbd::Durability::TrustServer;
    return requested.value_or(nbd::Durability::Replay);
}

AttachOptions recovery_options(const DeviceState& state) {
    AttachOptions o;
    o.uri_text = state.uri;
    o.name = state.name;
    o.dev_id = state.id;
    o.read_only = state.force_read_only;
    o.io_timeout = std::chrono::milliseconds(state.io_timeout_ms);
    if (state.reconnect_timeout_ms >= 0)
        o.reconnect_timeout = std::chrono::milliseconds(state.reconnect_timeout_ms);
    else
        o.reconnect_timeout.reset();
    o.durability = nbd::parse_durability(state.durability);
    o.durability_log_bytes = state.durability_log_bytes;
    o.on_daemon_loss = state.on_daemon_loss == "fail" ? DaemonLoss::Fail : DaemonLoss::Hold;
    o.resize_check = std::chrono::milliseconds(state.resize_check_ms);
    if (!state.metrics.empty()) o.metrics = parse_listen_address(state.metrics);
    o.recover = true;
    return o;
}

namespace {

using namespace std::chrono_literals;

// The device a recovery takes over: it must exist, have been made with user
// recovery, and be waiting for a daemon. Right after the old daemon died
// the kernel may still be releasing it (LIVE for a moment): wait a little.
ublk::DevInfo recoverable_device(ublk::ControlDevice& control, uint32_t id) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        const std::optional<ublk::DevInfo> found = control.find(id);
        if (!found) throw no_device_error("there is no ublk device " + std::to_string(id) + " to recover");
        const ublk::DevInfo& info = *found;
        if ((info.flags & P::UBLK_F_USER_RECOVERY) == 0)
            throw Error("ublk device " + std::to_string(id) + " was made without user recovery: it cannot be recovered",
                        EINVAL);
        const auto state = static_cast<P::DevState>(info.state);
        if (state == P::DevState::Quiesced || state == P::DevState::FailIo) return info;
        if (state == P::DevState::Dead)
            throw Error("ublk device " + std::to_string(id) + " is not started: nothing to recover (detach it)", EINVAL);
        if (std::chrono::steady_clock::now() > deadline)
            throw Error("ublk device " + std::to_string(id) + " is live, not quiesced: is its daemon still running?",
                        EBUSY);
        std::this_thread::sleep_for(100ms);
    }
}

// `-n ID` of a device that exists: said here, before a server is contacted
// or a daemon forked (ADD_DEV would say EEXIST only in the daemon's log).
void refuse_taken_id(ublk::ControlDevice& control, uint32_t id) {
    if (!control.find(id)) return;
    throw Error("ublk device " + std::to_string(id) + " already exists (-n): pick another, or leave -n out", EEXIST);
}

void check_same_export(const nbd::ExportInfo& first, const nbd::ExportInfo& other, unsigned index) {
    if (other.size != first.size || other.transmission_flags != first.transmission_flags ||
        other.block_size_min != first.block_size_min || other.block_size_max != first.block_size_max) {
        throw Error("connection " + std::to_string(index + 1) +
                    " sees a different export than the first (size " + std::to_string(other.size) + " vs " +
                    std::to_string(first.size) + ", flags " + std::to_string(other.transmission_flags) + " vs " +
                    std::to_string(first.transmission_flags) + "): refusing to mix them on one device");
    }
}

// User-space TLS encrypts in this process, so the payload must pass through
// our buffers anyway: copy mode. The kernel's pages (zero copy) would only
// add a copy into the tunnel's socketpair. kTLS takes them: the session
// sends stepwise there (its sendmsg refuses MSG_WAITALL, nbd/ktls.h), and
// encrypts and decrypts straight from and into the request's pages.
ublk::ZeroCopyRequest tls_zero_copy(ublk::ZeroCopyRequest asked, bool ktls,
                                    std::optional<nbd::PayloadOps> payload) {
    if (ktls) {
        if (payload && *payload == nbd::PayloadOps::SendZcFixed)
            throw usage_error("--payload-ops send_zc_fixed is not supported with kernel TLS (it encrypts into records "
                              "of its own); use send_recv_fixed, read_write_fixed or user_copy");
        return asked;
    }
    if (asked == ublk::ZeroCopyRequest::On)
        throw usage_error("--zero-copy=on cannot work with TLS: unbd encrypts in user space (copy mode), so "
                          "the payload must be in its own buffers; use --zero-copy=auto or off, or --tls-mode=ktls");
    if (asked == ublk::ZeroCopyRequest::Auto)
        spdlog::info("zero copy off: TLS is done in user space, which needs the payload in unbd's buffers");
    return ublk::ZeroCopyRequest::Off;
}

}  // namespace

AttachPlan plan_attach(const AttachOptions& options) {
    AttachPlan plan;
    plan.options = options;
    plan.uri = nbd::parse_uri(options.uri_text);
    // What the command line got wrong first: nothing is tried before it is right.
    if (options.depth < 1 || options.depth > P::UBLK_MAX_QUEUE_DEPTH) {
        throw usage_error("--depth must be between 1 and " + std::to_string(P::UBLK_MAX_QUEUE_DEPTH) + ", not " +
                          std::to_string(options.depth));
    }
    if (options.queues && (*options.queues < 1 || *options.queues > 64)) {
        throw usage_error("--queues must be between 1 and 64, not " + std::to_string(*options.queues));
    }
    if (options.dev_id && *options.dev_id > P::kMaxDevId) {
        throw usage_error("--id must be between 0 and " + std::to_string(P::kMaxDevId) + ", not " +
                          std::to_string(*options.dev_id));
    }
    if (!options.name.empty()) {
        check_device_name(options.name);
        check_name_free(options.name, options.dev_id);
    }
    if (options.durability_log_bytes < 2ull * options.buffer_bytes)
        throw usage_error("--durability-log-size must be at least " +
                          std::to_string(2ull * options.buffer_bytes >> 10) + "K (two of the largest requests)");

    // ublk first: no point connecting when the device cannot be made.
    plan.unprivileged = making_unprivileged_devices();
    if (options.unprivileged && !plan.unprivileged)
        throw usage_error("--unprivileged is for ordinary users: the kernel makes every device root creates a "
                          "privileged one");
    AttachOptions effective = options;
    P::ublk_params device_params{};
    {
        ublk::ControlDevice control;
        plan.features = control.features();
        if (plan.unprivileged) effective.zero_copy = check_unprivileged(options, plan.features);
        if (options.recover) {
            if (!options.dev_id) throw Error("recovering needs the device's id");
            plan.device = recoverable_device(control, *options.dev_id);
            device_params = control.get_params(*options.dev_id);
            // The device decides: queues, depth, buffers, zero copy.
            effective.queues = plan.device.nr_hw_queues;
            effective.depth = plan.device.queue_depth;
            effective.buffer_bytes = plan.device.max_io_buf_bytes;
            effective.zero_copy = (plan.device.flags & P::UBLK_F_AUTO_BUF_REG) ? ublk::ZeroCopyRequest::On
                                                                               : ublk::ZeroCopyRequest::Off;
            plan.options = effective;
        } else if (options.dev_id) {
            refuse_taken_id(control, *options.dev_id);
        }
    }
    if (options.on_daemon_loss == DaemonLoss::Fail && (plan.features & P::UBLK_F_USER_RECOVERY_FAIL_IO) == 0)
        throw Error("--on-daemon-loss=fail needs UBLK_F_USER_RECOVERY_FAIL_IO (Linux 6.13 or newer)");
    if ((plan.features & P::UBLK_F_CMD_IOCTL_ENCODE) == 0) {
        throw Error("kernel too old: ublk lacks ioctl-encoded commands (Linux 6.4 or newer needed)");
    }

    const bool ktls = plan.uri.tls && plan.uri.tls_settings.mode == nbd::TlsMode::Ktls;
    const bool user_space_tls = plan.uri.tls && !ktls;
    if (plan.uri.tls && !options.recover)
        effective.zero_copy = tls_zero_copy(effective.zero_copy, ktls, options.payload_ops);

    nbd::ConnectOptions co;
    co.dead_peer_timeout = options.io_timeout;
    plan.connect = co;
    plan.connections.push_back(nbd::connect_export(plan.uri, co));
    const nbd::ExportInfo first = plan.connections.front().info;  // a copy: push_back reallocates

    std::string warning;
    const unsigned queues = choose_queue_count(effective.queues, first.can_multi_conn(),
                                               std::max(1u, std::thread::hardware_concurrency()), &warning);
    if (!warning.empty()) plan.warnings.push_back(warning);
    if (options.recover && queues != plan.device.nr_hw_queues)
        throw Error("cannot recover device " + std::to_string(*options.dev_id) + ": it has " +
                    std::to_string(plan.device.nr_hw_queues) + " queues and the server no longer allows " +
                    "several connections");
    for (unsigned i = 1; i < queues; ++i) {
        plan.connections.push_back(nbd::connect_export(plan.uri, co));
        check_same_export(first, plan.connections.back().info, i);
    }

    ublk::MappingOptions mo;
    mo.force_read_only = options.read_only;
    mo.max_io_buf_bytes = effective.buffer_bytes;
    plan.params = ublk::map_export(first, mo);
    if (options.recover) {
        if (const std::string why = ublk::recovery_mismatch(device_params, plan.params); !why.empty())
            throw Error("cannot recover device " + std::to_string(*options.dev_id) + " from " + plan.uri.to_string() +
                        ": " + why);
        plan.params.params = device_params;  // the device stays as it is
        plan.params.size_bytes = device_params.basic.dev_sectors << 9;
    }
    plan.commands = ublk::command_support(first, options.read_only);
    plan.durability = choose_durability(options.durability, first.can_flush() && !plan.params.read_only);
    for (const auto& w : plan.params.warnings) plan.warnings.push_back(w);

    // With user-space TLS the engine's socket is the tunnel's socketpair
    // (nbd/tls/tls_tunnel.h); with kTLS the TCP socket itself.
    const int family = plan.uri.transport == nbd::Transport::Unix || user_space_tls ? AF_UNIX : AF_INET;
    // Copy mode with no --payload-ops uses none of the fixed-buffer ops.
    const bool copy_by_default = effective.zero_copy == ublk::ZeroCopyRequest::Off && !options.payload_ops;
    const uring::SocketOpSupport ops =
        copy_by_default ? uring::SocketOpSupport{}
                        : uring::probe_socket_ops(family, options.payload_ops == nbd::PayloadOps::SendZcFixed);
    spdlog::debug("socket ops: {}", copy_by_default ? "not probed (copy mode)" : ops.describe());
    plan.zero_copy = ublk::choose_zero_copy(effective.zero_copy, plan.features, ops, options.payload_ops);
    return plan;
}

}  // namespace unbd::daemon
