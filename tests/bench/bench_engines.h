// The two engines unbd-bench compares, behind one workload description.
#pragma once

#include <cstdint>
#include <string>

namespace unbd::bench {

struct BenchOptions {
    std::string uri;
    std::string rw = "randread";
    uint32_t bs = 4096;
    unsigned qd = 1;
    double seconds = 5;
    uint64_t area = 0;
    // unbd engine knobs, for experiments
    bool defer_taskrun = true;
    bool batch_wakeups = true;
    unsigned max_chain_sqes = 64;
    std::string payload = "user_copy";  // user_copy | read_write_fixed | send_zc_fixed
};

struct Result {
    uint64_t ios = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    double cpu_seconds = 0;  // user + system of this process
    double p50_us = 0, p99_us = 0;
    uint64_t errors = 0;
    uint64_t verify_failures = 0;
    std::string detail;  // engine notes (payload ops, chains per I/O)
};

Result run_unbd(const BenchOptions& o);
Result run_libnbd(const BenchOptions& o);

}  // namespace unbd::bench
