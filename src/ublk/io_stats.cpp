// Snapshots of a queue's counters (ublk/io_stats.h); off the hot path.
#include "ublk/io_stats.h"

namespace unbd::ublk {

IoStats to_stats(const IoMetrics& m) noexcept {
    const auto& ops = m.ops;
    const OpMetrics& read = ops[op_index(nbd::BlockOp::Read)];
    const OpMetrics& write = ops[op_index(nbd::BlockOp::Write)];
    IoStats s;
    s.reads = read.ok;
    s.writes = write.ok;
    s.read_bytes = read.bytes;
    s.written_bytes = write.bytes;
    s.flushes = ops[op_index(nbd::BlockOp::Flush)].ok;
    s.discards = ops[op_index(nbd::BlockOp::Trim)].ok + ops[op_index(nbd::BlockOp::WriteZeroes)].ok;
    s.errors = m.refused;
    for (const OpMetrics& op : ops) s.errors += op.errors;
    s.in_flight = m.in_flight;
    s.waits = m.waits;
    s.held_waits = m.held_waits;
    return s;
}

IoMetrics IoCounters::metrics() const noexcept {
    const auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    IoMetrics m;
    for (std::size_t i = 0; i < kOpCount; ++i) {
        const Op& from = ops_[i];
        OpMetrics& to = m.ops[i];
        to.ok = get(from.ok);
        to.errors = get(from.errors);
        to.bytes = get(from.bytes);
        to.duration_ns = get(from.duration_ns);
        for (std::size_t b = 0; b < kDurationBuckets; ++b) to.buckets[b] = get(from.buckets[b]);
    }
    m.refused = get(refused_);
    m.in_flight = get(in_flight_);
    m.waits = get(waits_);
    m.held_waits = get(held_waits_);
    m.connected = connected_.load(std::memory_order_acquire) ? 1 : 0;
    return m;
}

}  // namespace unbd::ublk
