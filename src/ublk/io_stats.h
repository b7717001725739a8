// I/O counters of one ublk queue, for `unbd stats` and `attach --metrics`.
// The queue's thread is the only writer (relaxed atomics: a plain load and
// store on x86, no locked instruction, no fence on the hot path); any thread
// may take a snapshot, which is consistent per counter, not across counters.
// The owner keeps the counters alive longer than any reader (the daemon: as
// long as its control socket and metrics endpoint serve).
//
// Per operation (nbd::BlockOp): requests completed without and with an
// error, bytes of the successful ones, and a duration histogram -- the time
// from the ublk request's arrival at the queue to its completion -- in
// fixed buckets (kDurationBoundsNs, 50 us .. 10 s), each bucket an atomic
// of its own. Every completed request is observed once, so a histogram's
// count equals ok + errors of its operation.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "nbd/block_request.h"

namespace unbd::ublk {

inline constexpr std::size_t kOpCount = 5;  // nbd::BlockOp, Read .. WriteZeroes
inline constexpr std::size_t op_index(nbd::BlockOp op) noexcept { return static_cast<std::size_t>(op); }

// Upper bounds of the duration buckets; one more bucket counts what is slower.
inline constexpr std::array<uint64_t, 17> kDurationBoundsNs = {
    50'000,      100'000,     250'000,     500'000,       1'000'000,     2'500'000,
    5'000'000,   10'000'000,  25'000'000,  50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr std::size_t kDurationBuckets = kDurationBoundsNs.size() + 1;

// The bucket of a duration: the first bound it does not exceed.
inline std::size_t duration_bucket(uint64_t ns) noexcept {
    std::size_t i = 0;
    while (i < kDurationBoundsNs.size() && ns > kDurationBoundsNs[i]) ++i;
    return i;
}

// A snapshot of one operation's counters, summable over queues.
struct OpMetrics {
    uint64_t ok = 0;
    uint64_t errors = 0;
    uint64_t bytes = 0;        // of the requests that succeeded
    uint64_t duration_ns = 0;  // sum over every completed request
    std::array<uint64_t, kDurationBuckets> buckets{};  // not cumulative

    OpMetrics& operator+=(const OpMetrics& o) {
        ok += o.ok;
        errors += o.errors;
        bytes += o.bytes;
        duration_ns += o.duration_ns;
        for (std::size_t i = 0; i < kDurationBuckets; ++i) buckets[i] += o.buckets[i];
        return *this;
    }
};

// Everything a queue counts (what --metrics serves), summable over queues.
struct IoMetrics {
    std::array<OpMetrics, kOpCount> ops{};
    uint64_t refused = 0;    // refused before reaching the server (unsupported, unaligned)
    uint64_t in_flight = 0;  // taken from the kernel, not yet completed
    unsigned connected = 0;  // queues whose connection is up (0 or 1 per queue)
    uint64_t waits = 0;       // times the queue thread waited for completions
    uint64_t held_waits = 0;  // of which held the wake-up (uring/wake_batch.h)

    IoMetrics& operator+=(const IoMetrics& o) {
        for (std::size_t i = 0; i < kOpCount; ++i) ops[i] += o.ops[i];
        refused += o.refused;
        in_flight += o.in_flight;
        connected += o.connected;
        waits += o.waits;
        held_waits += o.held_waits;
        return *this;
    }
};

// What `unbd stats` shows (daemon/control_protocol.h), summable over queues.
struct IoStats {
    uint64_t reads = 0;
    uint64_t writes = 0;
    uint64_t read_bytes = 0;
    uint64_t written_bytes = 0;
    uint64_t flushes = 0;
    uint64_t discards = 0;      // TRIM and WRITE_ZEROES
    uint64_t errors = 0;        // requests completed with an error, or refused
    uint64_t in_flight = 0;     // taken from the kernel, not yet committed
    uint64_t waits = 0;         // as in IoMetrics
    uint64_t held_waits = 0;

    IoStats& operator+=(const IoStats& o) {
        reads += o.reads;
        writes += o.writes;
        read_bytes += o.read_bytes;
        written_bytes += o.written_bytes;
        flushes += o.flushes;
        discards += o.discards;
        errors += o.errors;
        in_flight += o.in_flight;
        waits += o.waits;
        held_waits += o.held_waits;
        return *this;
    }
};

// `unbd stats`' view of the metrics.
IoStats to_stats(const IoMetrics& m) noexcept;

class IoCounters {
public:
    // A request was taken from the kernel.
    void started() noexcept { bump(in_flight_, 1); }
    // It completed with `result` (>= 0 done, < 0 -errno), `duration_ns`
    // after it was taken.
    void completed(const nbd::BlockRequest& r, int result, uint64_t duration_ns) noexcept {
        bump(in_flight_, -1);
        Op& op = ops_[op_index(r.op)];
        if (result < 0) {
            bump(op.errors, 1);
        } else {
            bump(op.ok, 1);
            bump(op.bytes, r.length);
        }
        bump(op.duration_ns, static_cast<int64_t>(duration_ns));
        bump(op.buckets[duration_bucket(duration_ns)], 1);
    }
    // A request refused before it reached the server (unsupported, unaligned).
    void refused() noexcept { bump(refused_, 1); }
    // The queue's connection is up (or not); stored only when it changes.
    void set_connected(bool up) noexcept {
        // release: whoever sees the link down also sees the Redialer told of it
        if (connected_.load(std::memory_order_relaxed) != up) connected_.store(up, std::memory_order_release);
    }

    // The queue loop's waits so far, and how many held their wake-up
    // (uring::WakeBatcher's running counts).
    void set_waits(uint64_t waits, uint64_t held) noexcept {
        waits_.store(waits, std::memory_order_relaxed);
        held_waits_.store(held, std::memory_order_relaxed);
    }

    IoMetrics metrics() const noexcept;
    IoStats snapshot() const noexcept { return to_stats(metrics()); }

private:
    // One writer: load + store, no locked read-modify-write.
    static void bump(std::atomic<uint64_t>& c, int64_t by) noexcept {
        c.store(c.load(std::memory_order_relaxed) + static_cast<uint64_t>(by), std::memory_order_relaxed);
    }

    struct Op {
        std::atomic<uint64_t> ok{0}, errors{0}, bytes{0}, duration_ns{0};
        std::array<std::atomic<uint64_t>, kDurationBuckets> buckets{};
    };
    std::array<Op, kOpCount> ops_{};
    std::atomic<uint64_t> refused_{0}, in_flight_{0}, waits_{0}, held_waits_{0};
    std::atomic<bool> connected_{true};
};

}  // namespace unbd::ublk
