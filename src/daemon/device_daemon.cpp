#include "daemon/device_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/wait.h"
#include "daemon/liveness.h"
#include "daemon/resize.h"
#include "daemon/unprivileged.h"
#include "daemon/sd_notify.h"
#include "daemon/udev_names.h"
#include "proto/ublk_uapi.h"

namespace unbd::daemon {

namespace P = proto::ublk;
using namespace std::chrono_literals;

void block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

namespace {

// udev or devtmpfs may need a moment to create the node after ADD_DEV.
Fd open_char_device(uint32_t dev_id) {
    const std::string path = ublk::char_device_path(dev_id);
    Fd fd;
    const bool opened = wait_for(
        [&] {
            fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
            if (!fd && errno != ENOENT) throw Error(errno_text("cannot open " + path, errno), errno);
            return fd.valid();
        },
        5s);
    if (!opened) throw Error(path + " did not appear within 5 s after ADD_DEV");
    return fd;
}

}  // namespace

DeviceDaemon::DeviceDaemon(AttachPlan plan) : plan_(std::move(plan)) {}

DeviceDaemon::~DeviceDaemon() {
    if (recovering_ && device_) {
        // A failed recovery must not delete the user's device: it stays
        // quiesced for the next try. The queues stop as members die.
        spdlog::error("recovery of device {} failed; it stays quiesced: run unbd recover again, or unbd detach",
                      device_->id());
        device_->release();
        metrics_.reset();  // before redialer_: metrics_snapshot() reads it
        redialer_.reset();
        return;
    }
    if (stopped_ || !device_) return;
    // An exception unwound start() or run: tear down in the same order.
    try {
        shutdown();
    } catch (const std::exception& e) {
        spdlog::error("cleanup: {}", e.what());
    }
}

DeviceState DeviceDaemon::start() {
    block_stop_signals();
    // WRITE_FIXED on a socket the server closed raises SIGPIPE (only send
    // takes MSG_NOSIGNAL): a lost server must fail I/O, not kill the daemon.
    ::signal(SIGPIPE, SIG_IGN);
    control_ = std::make_unique<ublk::ControlDevice>();
    const unsigned nq = static_cast<unsigned>(plan_.connections.size());
    state_.tls = plan_.connections.front().tls_description();  // before the queues take the tunnels

    for (unsigned q = 0; q < nq; ++q) counters_.push_back(std::make_unique<ublk::IoCounters>());
    open_metrics_endpoint();  // before the device: a port in use leaves nothing behind
    const ublk::DevInfo got = plan_.options.recover ? begin_recovery() : create_device();
    open_control_socket(got.dev_id);
    char_fd_ = open_char_device(got.dev_id);
    start_reconnect_machinery();

    ublk::StartGate gate(nq);
    for (unsigned q = 0; q < nq; ++q) {
        ublk::QueueConfig qc;
        qc.q_id = static_cast<uint16_t>(q);
        qc.depth = static_cast<uint16_t>(plan_.options.depth);
        qc.buffer_bytes = plan_.params.max_request_bytes;
        qc.char_fd = char_fd_.get();
        qc.zero_copy = plan_.zero_copy;
        qc.user_copy = (got.flags & P::UBLK_F_USER_COPY) != 0;
        qc.commands = plan_.commands;
        qc.info = plan_.connections[q].info;
        qc.reconnect.io_timeout = plan_.options.io_timeout;
        qc.reconnect.log = log_.get();
        qc.reconnect.redialer = redialer_.get();
        qc.reconnect.index = q;
        qc.export_size = &export_size_;
        qc.counters = counters_[q].get();
        queues_.push_back(std::make_unique<ublk::Queue>(qc, plan_.connections[q].take()));
        queues_.back()->start(gate);
    }
    // START_DEV hangs unless every FETCH is already in the kernel.
    if (!gate.wait(30s)) throw Error("the ublk queues did not start within 30 s");
    if (const std::string err = gate.error(); !err.empty()) throw Error(err);
    if (recovering_) {
        // The kernel re-issues what the old daemon held as soon as this returns.
        control_->end_user_recovery(got.dev_id, ::getpid());
        recovering_ = false;
        spdlog::info("ublk device {} recovered by pid {}", got.dev_id, ::getpid());
    } else {
        control_->start(got.dev_id, ::getpid());
        if (plan_.unprivileged) warn_if_kernel_timeout_short(got.dev_id, plan_.options);
    }

    state_.id = got.dev_id;
    state_.dev = ublk::block_device_path(got.dev_id);
    state_.uri = plan_.uri.to_string();
    state_.name = plan_.options.name;
    state_.size_bytes = plan_.params.size_bytes;
    state_.queues = nq;
    state_.depth = plan_.options.depth;
    state_.zero_copy = plan_.zero_copy.name();
    state_.zero_copy_reason = plan_.zero_copy.reason;
    state_.read_only = plan_.params.read_only;
    state_.logical_block_size = plan_.params.logical_block_size;
    state_.pid = ::getpid();
    const ProcessIdentity me = own_identity();
    state_.pid_ns = me.pid_ns;
    state_.pid_start = me.start_time;
    state_.durability = nbd::name(plan_.durability);
    state_.force_read_only = plan_.options.read_only;
    state_.io_timeout_ms = plan_.options.io_timeout.count();
    state_.reconnect_timeout_ms = plan_.options.reconnect_timeout ? plan_.options.reconnect_timeout->count() : -1;
    state_.durability_log_bytes = plan_.options.durability_log_bytes;
    state_.on_daemon_loss = plan_.options.on_daemon_loss == DaemonLoss::Fail ? "fail" : "hold";
    state_.resize_check_ms = plan_.options.resize_check.count();
    state_.owner_uid = plan_.unprivileged ? got.owner_uid : 0;
    if (metrics_) state_.metrics = to_string(ListenAddress{plan_.options.metrics->host, metrics_->port()});
    write_state(state_);
    live_.store(true, std::memory_order_release);
    announce_to_udev(state_.id);  // the add event came before the state file: udev looks again for the name
    spdlog::info("{} is live: {} queues x {} deep, zero copy {}", state_.dev, nq, state_.depth, state_.zero_copy);
    // Only now: a unit ordered after us may mount the device.
    notify_systemd("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=" + state_.dev + " is live (" +
                   state_.uri + ")");
    return state_;
}

void DeviceDaemon::start_reconnect_machinery() {
    export_size_ = plan_.params.size_bytes;
    if (plan_.durability != nbd::Durability::TrustServer)
        log_ = std::make_unique<nbd::DurabilityLog>(plan_.durability, plan_.options.durability_log_bytes);
    nbd::RedialOptions ro;
    ro.uri = plan_.uri;
    ro.connect = plan_.connect;
    // A reconnect attempt must not outlast the hold much: short timeouts.
    ro.connect.connect_timeout = std::min<std::chrono::milliseconds>(ro.connect.connect_timeout, 5s);
    ro.connect.handshake_timeout = std::min<std::chrono::milliseconds>(ro.connect.handshake_timeout, 5s);
    ro.connections = static_cast<unsigned>(plan_.connections.size());
    ro.reference = plan_.connections.front().info;
    ro.export_size = &export_size_;
    ro.reconnect_timeout = plan_.options.reconnect_timeout;
    if (plan_.options.io_timeout.count() > 0) ro.replay_timeout = plan_.options.io_timeout;
    redialer_ = std::make_unique<nbd::Redialer>(std::move(ro), log_.get());
}

// The state file tells `unbd list` how the connections are; rewritten only
// when that changes.
void DeviceDaemon::publish_health() {
    if (!redialer_) return;
    const nbd::RedialStatus st = redialer_->status();
    const std::string health = nbd::name(st.health);
    if (health == state_.connection && st.reconnects == state_.reconnects && st.last_failure == state_.last_failure)
        return;
    notify_systemd("STATUS=" + state_.dev + " " + health +
                   (st.last_failure.empty() ? std::string() : " (last failure: " + st.last_failure + ")"));
    {
        std::lock_guard lock(health_mutex_);
        state_.connection = health;
        state_.reconnects = st.reconnects;
        state_.last_failure = st.last_failure;
    }
    try {
        write_state(state_);
    } catch (const std::exception& e) {
        spdlog::warn("cannot update the state file: {}", e.what());
    }
}

// The daemon's identity for the CLI, across pid namespaces. A socket file
// that nobody listens on (a killed predecessor's) is replaced.
void DeviceDaemon::open_control_socket(uint32_t id) {
    control_server_ = std::make_unique<ControlServer>(
        id, [this, id](const ControlRequest& request) { return on_control(id, request); });
}

void DeviceDaemon::open_metrics_endpoint() {
    if (!plan_.options.metrics) return;
    try {
        metrics_ = std::make_unique<HttpEndpoint>(
            *plan_.options.metrics, [this](const std::string& path) { return metrics_reply(path, metrics_snapshot()); });
    } catch (const Error& e) {
        // A recovered or restarted daemon must take the device over whatever
        // holds its old port: the disk matters more than its metrics.
        if (!plan_.options.recover) throw;
        spdlog::warn("{}: serving no metrics", e.what());
    }
}

MetricsSnapshot DeviceDaemon::metrics_snapshot() const {
    MetricsSnapshot s;
    if (const int64_t beat = heartbeat_ns_.load(std::memory_order_relaxed); beat != 0) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch();
        s.loop_age = std::chrono::duration_cast<std::chrono::milliseconds>(now - std::chrono::nanoseconds(beat));
    }
    for (const auto& c : counters_) s.queues.push_back(c->metrics());
    s.live = live_.load(std::memory_order_acquire);
    if (!s.live) return s;  // no labels: state_ is still being filled (or the device goes)
    s.id = state_.id;
    s.dev = state_.dev;
    s.uri = plan_.uri.display();
    s.name = state_.name;
    s.zero_copy = state_.zero_copy;
    s.size_bytes = export_size_.load();
    // The Redialer's own word, not the state file's copy (the main loop
    // refreshes that every 100 ms): a scrape right after a queue saw its
    // connection go must not say "connected" beside unbd_connection_up 0.
    // Safe: metrics_ is always closed before redialer_ goes.
    if (redialer_) {
        const nbd::RedialStatus st = redialer_->status();
        s.connection = nbd::name(st.health);
        s.reconnects = st.reconnects;
        return s;
    }
    std::lock_guard lock(health_mutex_);
    s.connection = state_.connection;
    s.reconnects = state_.reconnects;
    return s;
}

nlohmann::json DeviceDaemon::on_control(uint32_t id, const ControlRequest& request) {
    // The work of detach, restart and resize belongs to the main thread:
    // the same signals an older `unbd` sent, from ourselves (getpid() is
    // right in our own namespace), taken by run_until_stopped().
    const auto to_self = [](int sig, int value) {
        sigval v{};
        v.sival_int = value;
        if (::sigqueue(::getpid(), sig, v) != 0) throw Error(errno_text("cannot signal the main thread", errno), errno);
        return nlohmann::json::object();
    };
    switch (request.cmd) {
        case ControlCommand::Ping:
            return {{"pid", ::getpid()}, {"id", id}, {"dev", ublk::block_device_path(id)}};
        case ControlCommand::Stats: {
            DeviceStats s;
            s.id = id;
            s.dev = ublk::block_device_path(id);
            s.size_bytes = export_size_.load();
            {
                std::lock_guard lock(health_mutex_);
                s.connection = state_.connection;
                s.reconnects = state_.reconnects;
                s.last_failure = state_.last_failure;
            }
            for (const auto& c : counters_) {
                s.queues.push_back(c->snapshot());
                s.total += s.queues.back();
            }
            return {{"stats", to_json(s)}};
        }
        case ControlCommand::Detach: return to_self(SIGTERM, 0);
        case ControlCommand::Restart: return to_self(SIGUSR1, 0);
        case ControlCommand::Resize: return to_self(SIGUSR2, request.allow_shrink ? 1 : 0);
    }
    throw Error("unknown command");
}

// ADD_DEV + SET_PARAMS. The device outlives a crashed daemon (USER_RECOVERY:
// I/O waits, or with FAIL_IO fails, until `unbd recover`); REISSUE re-sends
// to the new daemon what the dead one held (a re-sent write is idempotent).
ublk::DevInfo DeviceDaemon::create_device() {
    const uint64_t features = plan_.features;
    ublk::DevInfo want{};
    want.nr_hw_queues = static_cast<uint16_t>(plan_.connections.size());
    want.queue_depth = static_cast<uint16_t>(plan_.options.depth);
    want.max_io_buf_bytes = plan_.options.buffer_bytes;
    want.dev_id = plan_.options.dev_id.value_or(P::kDevIdAuto);
    want.ublksrv_pid = ::getpid();
    want.ublksrv_flags = ublk::kUnbdDeviceMark;
    want.flags = P::UBLK_F_CMD_IOCTL_ENCODE | P::UBLK_F_URING_CMD_COMP_IN_TASK;
    if (plan_.unprivileged) return create_unprivileged_device(want);
    if (plan_.zero_copy.zero_copy()) want.flags |= P::UBLK_F_AUTO_BUF_REG;
    // Zero copy also asks for USER_COPY (6.5): a queue copies a write's data
    // into the durability log with one pread (a WRITE_FIXED into the memfd
    // runs in an io_uring worker), and small READ payloads into the request
    // with one pwrite instead of a second recv (see DESIGN.md, Performance).
    if (plan_.zero_copy.zero_copy() && (features & P::UBLK_F_USER_COPY)) want.flags |= P::UBLK_F_USER_COPY;
    if (features & P::UBLK_F_USER_RECOVERY) {
        want.flags |= P::UBLK_F_USER_RECOVERY;
        // The kernel accepts RECOVERY with REISSUE or with FAIL_IO, not both.
        want.flags |= plan_.options.on_daemon_loss == DaemonLoss::Fail ? P::UBLK_F_USER_RECOVERY_FAIL_IO
                                                                        : P::UBLK_F_USER_RECOVERY_REISSUE;
        if (features & P::UBLK_F_QUIESCE) want.flags |= P::UBLK_F_QUIESCE;
    }
    if (features & P::UBLK_F_UPDATE_SIZE) want.flags |= P::UBLK_F_UPDATE_SIZE;
    ublk::DevInfo got{};
    try {
        got = control_->add(want);
    } catch (const Error& e) {
        if (e.error_number() == EEXIST && plan_.options.dev_id) {
            throw Error("ublk device " + std::to_string(*plan_.options.dev_id) + " already exists (-n): pick another",
                        EEXIST);
        }
        throw;
    }
    device_.emplace(*control_, got.dev_id);
    spdlog::info("ublk device {} added, flags {}", got.dev_id, P::feature_names(got.flags));
    if (plan_.zero_copy.zero_copy() && (got.flags & P::UBLK_F_AUTO_BUF_REG) == 0) {
        throw Error("the kernel did not grant UBLK_F_AUTO_BUF_REG");
    }
    control_->set_params(got.dev_id, plan_.params.params);
    return got;
}

// ADD_DEV for a non-root user (daemon/unprivileged.h): copy mode, no
// recovery; udev must hand us /dev/ublkcN before SET_PARAMS.
ublk::DevInfo DeviceDaemon::create_unprivileged_device(ublk::DevInfo want) {
    want.flags |= P::UBLK_F_UNPRIVILEGED_DEV;
    if (plan_.features & P::UBLK_F_UPDATE_SIZE) want.flags |= P::UBLK_F_UPDATE_SIZE;
    const ublk::DevInfo got = control_->add(want);
    device_.emplace(*control_, got.dev_id);
    spdlog::info("unprivileged ublk device {} added for uid {}, flags {}", got.dev_id, got.owner_uid,
                 P::feature_names(got.flags));
    wait_for_own_char_node(got.dev_id, 10s);
    control_->set_params(got.dev_id, plan_.params.params);
    return got;
}

// START_USER_RECOVERY on the quiesced device (never SET_PARAMS: the kernel
// refuses it once the device was used). Until END_USER_RECOVERY succeeds a
// failure leaves the device quiesced, for another `unbd recover` or a detach.
ublk::DevInfo DeviceDaemon::begin_recovery() {
    const uint32_t id = *plan_.options.dev_id;
    control_->start_user_recovery(id, 30s);
    recovering_ = true;
    device_.emplace(*control_, id);
    const ublk::DevInfo got = control_->get_info(id);
    spdlog::info("recovering ublk device {} (flags {})", id, P::feature_names(got.flags));
    return got;
}

bool DeviceDaemon::run_until_stopped() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    bool queues_failed = false;
    const auto check_every = plan_.options.resize_check;
    if (check_every.count() > 0) next_resize_check_ = std::chrono::steady_clock::now() + check_every;
    for (;;) {
        publish_health();
        const auto now = std::chrono::steady_clock::now();
        heartbeat_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
                            std::memory_order_relaxed);
        // A reconnect's handshake saw the export grow: follow it.
        if (redialer_) {
            const uint64_t seen = redialer_->status().export_size;
            if (seen != handled_export_size_ && seen >= export_size_.load() + state_.logical_block_size)
                resize(false, "a reconnect saw the export grow");
            handled_export_size_ = seen;
        }
        if (check_every.count() > 0 && now >= next_resize_check_) {
            next_resize_check_ = now + check_every;
            resize(false, "--resize-check");
        }
        // 100 ms: publish_health() then lags a lost connection by at most that
        // (`unbd list` reads the state file; vm/attach-server-dies once caught
        // it still "connected" within the old 1 s tick).
        timespec ts{0, 100 * 1000 * 1000};
        siginfo_t info{};
        const int sig = ::sigtimedwait(&set, &info, &ts);
        if (sig == SIGUSR2) {
            resize(info.si_code == SI_QUEUE && (info.si_value.sival_int & 1), "unbd resize", true);
            continue;
        }
        if (sig == SIGUSR1) {
            if (hand_over()) return true;
            continue;
        }
        if (sig > 0) {
            spdlog::info("signal {}: detaching {}", sig, state_.dev);
            break;
        }
        // A queue thread only ends on its own when it failed (or the device
        // was deleted behind our back): its tags would hang, so detach.
        bool any_done = false;
        for (const auto& q : queues_) any_done = any_done || q->finished();
        if (any_done) {
            queues_failed = true;
            spdlog::error("a queue of {} stopped; detaching", state_.dev);
            break;
        }
    }
    for (const auto& q : queues_) {
        if (const std::string why = q->failure(); !why.empty()) spdlog::error("{}", why);
    }
    shutdown();
    return !queues_failed;
}

// `unbd restart`: QUIESCE_DEV makes the kernel wait for this daemon's I/O
// to finish and abort its FETCHes; the queues then FLUSH what the log holds
// (it dies with us), disconnect and end; the device is left quiesced, with
// its state file, for the next daemon (END_USER_RECOVERY re-issues the I/O
// queued meanwhile). False when the kernel refused: keep serving.
bool DeviceDaemon::hand_over() {
    const uint32_t id = device_->id();
    spdlog::info("handing device {} over to a new daemon (QUIESCE_DEV)", id);
    live_ = false;  // /readyz: I/O waits from here on
    const int q = control_->quiesce(id, 30'000);
    if (q < 0) {
        spdlog::error("QUIESCE_DEV for device {} failed: {}; still serving it", id, std::strerror(-q));
        live_ = true;
        return false;
    }
    stopped_ = true;
    metrics_.reset();  // the next daemon binds the same port
    stop_queues();
    redialer_.reset();
    char_fd_.reset();
    device_->release();
    device_.reset();
    spdlog::info("device {} is quiesced; this daemon exits", id);
    return true;
}

void DeviceDaemon::stop_queues() noexcept {
    for (auto& q : queues_) q->request_stop();
    for (auto& q : queues_) q->join();
    queues_.clear();
}

void DeviceDaemon::shutdown() {
    stopped_ = true;
    live_ = false;
    metrics_.reset();  // closed first: a scraper sees the device go, not a half-stopped one
    notify_systemd("STOPPING=1\nSTATUS=detaching");
    // 0. Held I/O fails from now on: nothing waits for a lost server.
    if (redialer_) redialer_->stop();
    if (!device_) {
        stop_queues();
        redialer_.reset();
        return;
    }
    const uint32_t id = device_->id();
    // 1. STOP_DEV drains in-flight I/O through the running queues.
    const int stop = control_->try_stop(id);
    if (stop < 0) spdlog::warn("STOP_DEV for device {}: {}", id, std::strerror(-stop));
    // 2 + 3. NBD_CMD_DISC and join; the rings close and cancel the FETCHes.
    stop_queues();
    redialer_.reset();
    char_fd_.reset();
    // 4. DEL_DEV, now that nothing holds /dev/ublkcN. A mounted file system
    //    keeps the disk referenced and DEL_DEV would wait for the umount:
    //    the kernel finishes the deletion when the last user lets go.
    const int del = control_->try_remove_async(id);
    device_->release();
    device_.reset();
    remove_state(id);
    if (del < 0) throw Error(errno_text("cannot delete ublk device " + std::to_string(id), del), -del);
}

}  // namespace unbd::daemon
