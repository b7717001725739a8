// DeviceDaemon: one attached device -- its ublk device, N queues (one
// thread + one NBD connection each) and its lifecycle.
//
// Threads:
//   main thread   owns the control device (SINGLE_ISSUER ring), waits for
//                 SIGTERM/SIGINT/SIGHUP (blocked process-wide, taken with
//                 sigtimedwait), watches the queues and keeps the state
//                 file's connection health current (every 100 ms).
//   control thread  daemon/control_socket.h: answers ping and stats from
//                 snapshots (atomic counters; health under a mutex); turns
//                 detach / restart / resize into the signals above, sent to
//                 itself, so the main thread does the work as before.
//   metrics thread  with --metrics only (daemon/http_endpoint.h): answers
//                 /metrics, /healthz and /readyz from the same snapshots
//                 (daemon/metrics.h); bound first of all, so a bad address
//                 or a port in use fails the attach before a device exists;
//                 closed when shutdown or the hand-over begins.
//   queue threads one per hardware queue, see ublk/queue.h.
//   redial thread nbd::Redialer: reconnects, replays the durability log.
//
// Start order: unshare the mount namespace -> metrics endpoint -> ADD_DEV (USER_RECOVERY) ->
// SET_PARAMS -> control socket -> open /dev/ublkcN -> start queues (each submits every
// FETCH) -> wait for all of them (StartGate, bounded) -> START_DEV -> state
// file. Any failure unwinds in reverse and DEL_DEVs: nothing is left behind.
//
// Recovery order (`unbd recover`, after the old daemon died; the NBD
// connections are already made): START_USER_RECOVERY (retried while the
// kernel still releases the old daemon) -> GET_DEV_INFO -> control socket
// (replacing the dead daemon's) -> open
// /dev/ublkcN -> start queues (FETCH every tag) -> END_USER_RECOVERY(pid)
// -> state file. A failure before END leaves the device quiesced.
//
// Shutdown order (signal, or a queue thread ended on its own):
//   0. stop the Redialer: I/O held for a lost server fails now instead of
//      holding STOP_DEV for up to --reconnect-timeout.
//   1. stop accepting + drain: STOP_DEV. The kernel removes the disk and
//      waits for in-flight I/O, which the queues still serve; then it
//      aborts their FETCHes.
//   2. NBD_CMD_DISC: each queue, once idle, disconnects and returns.
//   3. join the queue threads; their rings close, /dev/ublkcN is closed.
//   4. DEL_DEV (blocks while anything holds /dev/ublkcN: hence after 3);
//      the Redialer and the durability log go after the queues.
//   5. remove the state file.
//   6. (~DeviceDaemon) close and remove the control socket: until then a
//      `unbd detach` waiting on it knows the daemon is still at work.
// (DISC comes after STOP_DEV, not before: STOP_DEV itself may issue I/O,
// e.g. a cache flush, that still needs the connections.)
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/fd.h"
#include "daemon/attach_plan.h"
#include "daemon/control_socket.h"
#include "daemon/http_endpoint.h"
#include "daemon/metrics.h"
#include "daemon/state_file.h"
#include "nbd/durability_log.h"
#include "nbd/redialer.h"
#include "ublk/control_device.h"
#include "ublk/queue.h"

namespace unbd::daemon {

class DeviceDaemon {
public:
    explicit DeviceDaemon(AttachPlan plan);
    ~DeviceDaemon();
    DeviceDaemon(const DeviceDaemon&) = delete;
    DeviceDaemon& operator=(const DeviceDaemon&) = delete;

    // Creates the device and brings it live; returns what the state file
    // holds. Throws unbd::Error after deleting whatever it made.
    DeviceState start();

    // Blocks until a stop signal or until a queue thread ended, then shuts
    // down in the order above (or, on SIGUSR1, hands the device over). Returns false when the device ended because
    // its queues failed (connection lost, device deleted elsewhere).
    bool run_until_stopped();

private:
    void shutdown();
    void stop_queues() noexcept;
    void start_reconnect_machinery();
    ublk::DevInfo create_device();
    ublk::DevInfo create_unprivileged_device(ublk::DevInfo want);
    ublk::DevInfo begin_recovery();
    bool hand_over();
    // Renegotiates on a side connection and resizes the device to the
    // export (daemon/resize.h); records the outcome in the state file.
    // `asked`: by `unbd resize`, whose outcome is always recorded.
    void resize(bool allow_shrink, const char* why, bool asked = false);
    void renegotiate_for(uint64_t bytes);
    void publish_health();
    void open_control_socket(uint32_t id);
    void open_metrics_endpoint();
    // On the metrics thread: the counters, health and labels now.
    MetricsSnapshot metrics_snapshot() const;
    // On the control thread (control_socket.h).
    nlohmann::json on_control(uint32_t id, const ControlRequest& request);

    AttachPlan plan_;
    std::unique_ptr<ublk::ControlDevice> control_;
    std::optional<ublk::Device> device_;
    Fd char_fd_;
    std::unique_ptr<nbd::DurabilityLog> log_;  // outlive the queues
    std::unique_ptr<nbd::Redialer> redialer_;
    // `unbd stats`: one per queue; declared before the queues (which write
    // them) and the control socket (which reads them), so it outlives both.
    std::vector<std::unique_ptr<ublk::IoCounters>> counters_;
    std::vector<std::unique_ptr<ublk::Queue>> queues_;
    DeviceState state_;
    std::atomic<uint64_t> export_size_{0};  // the device's bytes, read by the queues' sessions
    std::chrono::steady_clock::time_point next_resize_check_{};
    uint64_t handled_export_size_ = 0;  // the Redialer's last export size acted on
    bool stopped_ = false;
    bool recovering_ = false;  // between START_ and END_USER_RECOVERY
    mutable std::mutex health_mutex_;  // state_'s connection fields: main thread writes, control thread reads
    // state_'s other fields are read by the metrics thread only once live_
    // is set (release/acquire), and never change after that.
    std::atomic<bool> live_{false};
    std::atomic<int64_t> heartbeat_ns_{0};  // steady_clock: the main loop's last turn; 0 = not yet
    std::unique_ptr<HttpEndpoint> metrics_;
    // Last: closed first, after shutdown() finished (order step 6).
    std::unique_ptr<ControlServer> control_server_;
};

// Blocks SIGTERM, SIGINT, SIGHUP (detach) and SIGUSR1 (hand over, for
// `unbd restart`) in the calling thread (and the threads
// it creates later), so they are taken only by sigtimedwait.
void block_stop_signals();

}  // namespace unbd::daemon
