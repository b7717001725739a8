// Workload shared by both engines: which op and offset the next I/O gets,
// latency bookkeeping, CPU time, and the verify pattern.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "bench_engines.h"

namespace unbd::bench {

class Workload {
public:
    Workload(const BenchOptions& o, uint64_t export_size) : o_(o) {
        uint64_t area = o.area ? o.area : std::min<uint64_t>(export_size, 1ull << 30);
        area = std::min(area, export_size);
        blocks_ = std::max<uint64_t>(1, area / o.bs);
        random_ = o.rw.rfind("rand", 0) == 0;
        lat_.reserve(1 << 20);
    }

    struct Io {
        bool write;
        uint64_t offset;
        uint64_t seq;  // verify: which write's pattern the block holds
    };

    // verify: each queue slot owns every qd-th block and alternates
    // "write a fresh pattern" / "read it back and check", so no two I/Os in
    // flight ever touch the same block.
    Io next(unsigned slot) {
        Io io{};
        if (o_.rw == "verify") {
            if (lanes_.empty()) lanes_.resize(o_.qd);
            Lane& l = lanes_[slot];
            if (l.read_next) {
                l.read_next = false;
                return Io{false, l.block * o_.bs, l.seq};
            }
            const uint64_t per_lane = std::max<uint64_t>(1, blocks_ / o_.qd);
            l.block = (slot + uint64_t{o_.qd} * (l.n++ % per_lane)) % blocks_;
            l.seq = ++issued_;
            l.read_next = true;
            return Io{true, l.block * o_.bs, l.seq};
        }
        io.write = o_.rw == "write" || o_.rw == "randwrite" || (o_.rw == "randrw" && (rng_() & 1));
        const uint64_t block = random_ ? rng_() % blocks_ : issued_ % blocks_;
        ++issued_;
        io.offset = block * o_.bs;
        return io;
    }
    bool verifying() const { return o_.rw == "verify"; }

    void fill(std::byte* p, uint64_t seq) const {
        uint64_t x = seq * 0x9E3779B97F4A7C15ull + 12345;
        for (uint32_t i = 0; i < o_.bs; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            std::memcpy(p + i, &x, std::min<uint32_t>(8, o_.bs - i));
        }
    }
    bool check(const std::byte* p, uint64_t seq) const {
        std::vector<std::byte> want(o_.bs);
        fill(want.data(), seq);
        return std::memcmp(p, want.data(), o_.bs) == 0;
    }

    void record(std::chrono::steady_clock::time_point start) {
        lat_.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count() /
            100));
    }

    static double cpu_now() {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }

    void finish(Result& r) {
        r.ios = lat_.size();
        r.bytes = r.ios * o_.bs;
        if (lat_.empty()) return;
        auto pct = [&](double p) {
            auto it = lat_.begin() + static_cast<long>(p * static_cast<double>(lat_.size() - 1));
            std::nth_element(lat_.begin(), it, lat_.end());
            return *it / 10.0;
        };
        r.p50_us = pct(0.50);
        r.p99_us = pct(0.99);
    }

private:
    BenchOptions o_;
    uint64_t blocks_ = 1;
    bool random_ = false;
    uint64_t issued_ = 0;
    std::mt19937_64 rng_{12345};
    struct Lane {
        bool read_next = false;
        uint64_t block = 0, seq = 0, n = 0;
    };
    std::vector<Lane> lanes_;
    std::vector<uint32_t> lat_;  // in 100 ns units
};

}  // namespace unbd::bench
