// Queue: one ublk hardware queue, served by one thread that owns one
// io_uring and one NBD connection (nbd::Session). No locks on the hot path.
//
// Lifetime and cancellation contract:
//   start()         spawns the thread. The thread sets PR_SET_IO_FLUSHER,
//                   creates its ring, buffer table and descriptor mmap,
//                   submits a FETCH for every tag, then reports to the
//                   StartGate: START_DEV may be issued only after every
//                   queue reported (or it hangs).
//   serving         FETCH/COMMIT_AND_FETCH CQE -> BlockRequest -> Session;
//                   Session completion -> COMMIT_AND_FETCH with the result.
//                   With many requests in flight the loop's wait holds its
//                   wake-up briefly to reap several replies at once
//                   (uring/wake_batch.h, Linux 6.12+).
//   request_stop()  (any thread, after STOP_DEV drained the disk, or on
//                   failure) wakes the thread through an eventfd. Once no
//                   request is in flight it sends NBD_CMD_DISC, waits
//                   (bounded) for the session to go idle and returns.
//                   Tags the kernel aborts (-ENODEV: device stopped or
//                   deleted) count as stopping too.
//   join()          joins the thread. Ring teardown cancels the remaining
//                   FETCHes; only then may the daemon close /dev/ublkcN and
//                   DEL_DEV.
// A connection that fails is replaced (nbd::ReconnectingSession and the
// device's nbd::Redialer): its requests are held and re-sent, or fail with
// -EIO once the Redialer gives up holding; the thread keeps serving.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/fd.h"
#include "nbd/connect.h"
#include "nbd/export_info.h"
#include "nbd/reconnecting_session.h"
#include "ublk/device_params.h"
#include "ublk/io_stats.h"
#include "ublk/zero_copy.h"

namespace unbd::ublk {

// Counts queues that have their FETCHes submitted (or failed).
class StartGate {
public:
    explicit StartGate(unsigned count) : left_(count) {}
    void arrive(const std::string& error = {});
    // True when all arrived in time; error() tells whether one failed.
    bool wait(std::chrono::milliseconds timeout);
    std::string error() const;

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    unsigned left_;
    std::string error_;
};

struct QueueConfig {
    uint16_t q_id = 0;
    uint16_t depth = 128;
    uint32_t buffer_bytes = 512 << 10;  // per tag; == max request
    int char_fd = -1;                   // /dev/ublkcN, owned by the daemon
    ZeroCopyChoice zero_copy;
    bool user_copy = false;             // the device has UBLK_F_USER_COPY (pread of request data)
    CommandSupport commands;
    nbd::ExportInfo info;               // of this queue's own connection
    nbd::ReconnectOptions reconnect;    // redialer, durability log, io timeout
    const std::atomic<uint64_t>* export_size = nullptr;  // the device's bytes now (resize)
    IoCounters* counters = nullptr;     // `unbd stats`, --metrics; owned by the daemon, outlives the queue
};

class Queue {
public:
    Queue(QueueConfig config, nbd::Connection connection);  // this queue's connection
    ~Queue();  // requests stop and joins if still running
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;

    void start(StartGate& gate);
    void request_stop() noexcept;
    void join();
    bool finished() const noexcept { return finished_.load(); }
    // Why the thread stopped early or the connection failed ("" if not).
    std::string failure() const;

private:
    void run(StartGate& gate);
    void serve(StartGate& gate);
    void set_failure(const std::string& why);

    QueueConfig config_;
    nbd::Connection connection_;
    Fd wake_;  // eventfd: request_stop() -> thread
    std::thread thread_;
    std::atomic<bool> finished_{false};
    mutable std::mutex failure_mutex_;
    std::string failure_;
};

}  // namespace unbd::ublk
