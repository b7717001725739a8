// SyntheticFrontend: stands in for a ublk queue where the kernel has no
// ublk (tests, benchmarks). It owns one io_uring, per-tag page-aligned
// buffers registered at buffer index == tag, and a ReconnectingSession on
// that ring (its socket as registered file 0, re-registered on reconnect),
// feeds it BlockRequests and runs the loop the ublk queue thread would run.
//
// Single-threaded: everything runs on the thread that created it.
// Shutdown: the destructor fails the session if it still has I/O in the
// kernel, reaps until idle (bounded), then tears down ring resources.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "common/fd.h"
#include "nbd/reconnecting_session.h"
#include "uring/registered.h"
#include "uring/ring.h"
#include "uring/wake_batch.h"

namespace unbd::nbd {

struct SyntheticOptions {
    uint16_t queue_depth = 64;
    uint32_t buffer_bytes = 1u << 20;  // per tag; also the largest READ/WRITE
    PayloadOps payload_ops = PayloadOps::ReadWriteFixed;
    bool fixed_file = true;            // register the socket, use IOSQE_FIXED_FILE
    unsigned max_chain_sqes = 64;
    bool stepwise_sends = false;       // SessionOptions::stepwise_sends (kTLS's way, tested on plain TCP)
    bool fast_taskrun = true;          // SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN
    bool batch_wakeups = true;         // uring::WakeBatcher, where the kernel has min_wait
    // Reconnect, replay, io timeout (bind_socket is filled in here).
    ReconnectOptions reconnect{.io_timeout = std::chrono::milliseconds(0)};
};

class SyntheticFrontend {
public:
    using Completion = std::function<void(uint16_t tag, int result)>;

    SyntheticFrontend(Fd socket, const ExportInfo& info, const SyntheticOptions& options);
    SyntheticFrontend(Connection connection, const SyntheticOptions& options);  // nbds: keeps the tunnel
    ~SyntheticFrontend();
    SyntheticFrontend(const SyntheticFrontend&) = delete;
    SyntheticFrontend& operator=(const SyntheticFrontend&) = delete;

    std::span<std::byte> buffer(uint16_t tag);
    // The current connection's Session (while reconnecting: the link has none).
    Session& session() { return *link_->session(); }
    ReconnectingSession& link() { return *link_; }
    int socket_fd() const { return link_->socket_fd(); }
    uring::Ring& ring() { return *ring_; }
    uint16_t queue_depth() const { return options_.queue_depth; }
    const uring::WakeBatcher& wake_batcher() const { return batcher_; }

    // Called for every completion (including the -EIO given to requests
    // left unfinished when the session fails).
    void set_on_complete(Completion fn) { on_complete_ = std::move(fn); }
    void submit(const BlockRequest& r) {
        ++in_flight_;
        link_->submit(r);
    }

    // One loop iteration: prepare, submit, wait up to timeout for a CQE,
    // dispatch every CQE. After a failure, once the session is idle, every
    // unfinished request completes with -EIO.
    void step(std::chrono::microseconds timeout);
    // Iterates until done() or the timeout; false on timeout.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

    // Runs `count` requests with up to queue_depth in flight. make(i, tag)
    // fills the tag's buffer and returns request i (its tag is forced to
    // `tag`); done(i, tag, result) sees each completion. False on timeout.
    bool run_batch(std::size_t count, const std::function<BlockRequest(std::size_t, uint16_t)>& make,
                   const std::function<void(std::size_t, uint16_t, int)>& done,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // One request on tag 0, waited for. -ETIMEDOUT on timeout.
    int execute(BlockRequest r, std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // NBD_CMD_DISC after draining; true once sent.
    bool disconnect(std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
    struct FreeDeleter {
        void operator()(std::byte* p) const;
    };
    SyntheticOptions options_;
    std::unique_ptr<uring::Ring> ring_;
    std::unique_ptr<std::byte, FreeDeleter> memory_;
    std::unique_ptr<uring::BufferTable> buffers_;
    std::unique_ptr<uring::FileTable> files_;
    std::unique_ptr<ReconnectingSession> link_;
    Completion on_complete_;
    uring::WakeBatcher batcher_;
    unsigned in_flight_ = 0;        // submitted, not completed
    unsigned completed_since_wake_ = 0;
};

}  // namespace unbd::nbd
