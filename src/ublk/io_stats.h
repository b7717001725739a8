// I/O counters of one ublk queue, for `unbd stats`. The queue's thread is
// the only writer (relaxed atomics: a plain add on x86, no fence on the hot
// path); any thread may take a snapshot, which is consistent per counter,
// not across counters. The owner keeps the counters alive longer than any
// reader (the daemon: as long as its control socket serves).
#pragma once

#include <atomic>
#include <cstdint>

#include "nbd/block_request.h"

namespace unbd::ublk {

// A snapshot, summable over queues.
struct IoStats {
    uint64_t reads = 0;
    uint64_t writes = 0;
    uint64_t read_bytes = 0;
    uint64_t written_bytes = 0;
    uint64_t flushes = 0;
    uint64_t discards = 0;      // TRIM and WRITE_ZEROES
    uint64_t errors = 0;        // requests completed with an error
    uint64_t in_flight = 0;     // taken from the kernel, not yet committed

    IoStats& operator+=(const IoStats& o) {
        reads += o.reads;
        writes += o.writes;
        read_bytes += o.read_bytes;
        written_bytes += o.written_bytes;
        flushes += o.flushes;
        discards += o.discards;
        errors += o.errors;
        in_flight += o.in_flight;
        return *this;
    }
};

class IoCounters {
public:
    // A request was taken from the kernel.
    void started() noexcept { bump(in_flight_, 1); }
    // It completed with `result` (>= 0 done, < 0 -errno).
    void completed(const nbd::BlockRequest& r, int result) noexcept {
        bump(in_flight_, -1);
        if (result < 0) {
            bump(errors_, 1);
            return;
        }
        switch (r.op) {
            case nbd::BlockOp::Read: bump(reads_, 1), bump(read_bytes_, r.length); break;
            case nbd::BlockOp::Write: bump(writes_, 1), bump(written_bytes_, r.length); break;
            case nbd::BlockOp::Flush: bump(flushes_, 1); break;
            case nbd::BlockOp::Trim:
            case nbd::BlockOp::WriteZeroes: bump(discards_, 1); break;
        }
    }
    // A request refused before it reached the server (unsupported, unaligned).
    void refused() noexcept { bump(errors_, 1); }

    IoStats snapshot() const noexcept {
        IoStats s;
        s.reads = reads_.load(std::memory_order_relaxed);
        s.writes = writes_.load(std::memory_order_relaxed);
        s.read_bytes = read_bytes_.load(std::memory_order_relaxed);
        s.written_bytes = written_bytes_.load(std::memory_order_relaxed);
        s.flushes = flushes_.load(std::memory_order_relaxed);
        s.discards = discards_.load(std::memory_order_relaxed);
        s.errors = errors_.load(std::memory_order_relaxed);
        s.in_flight = in_flight_.load(std::memory_order_relaxed);
        return s;
    }

private:
    // One writer: load + store, no locked read-modify-write.
    static void bump(std::atomic<uint64_t>& c, int64_t by) noexcept {
        c.store(c.load(std::memory_order_relaxed) + static_cast<uint64_t>(by), std::memory_order_relaxed);
    }

    std::atomic<uint64_t> reads_{0}, writes_{0}, read_bytes_{0}, written_bytes_{0};
    std::atomic<uint64_t> flushes_{0}, discards_{0}, errors_{0}, in_flight_{0};
};

}  // namespace unbd::ublk
