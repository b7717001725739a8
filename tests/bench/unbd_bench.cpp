// unbd-bench: the unbd NBD engine (io_uring, synthetic frontend) side by side
// with libnbd (nbd_aio_pread/pwrite) on the same server, same queue depth.
//
//   unbd-bench URI --rw read|write|randread|randwrite|randrw|verify --bs SIZE
//              --qd N --seconds S [--engine unbd|libnbd] [--json]
//
// CPU time is getrusage(RUSAGE_SELF): the client only, the server being
// another process.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <cstdio>
#include <iostream>

#include "bench_engines.h"

using namespace unbd::bench;

namespace {

uint64_t parse_size(const std::string& s) {
    std::size_t pos = 0;
    uint64_t v = std::stoull(s, &pos);
    if (pos < s.size()) {
        switch (s[pos] | 0x20) {
            case 'k': v <<= 10; break;
            case 'm': v <<= 20; break;
            case 'g': v <<= 30; break;
            default: throw CLI::ValidationError("--bs", "bad size " + s);
        }
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"unbd-bench: unbd's io_uring NBD engine vs libnbd"};
    BenchOptions o;
    std::string bs = "4k", engine = "unbd";
    bool json = false;
    app.add_option("uri", o.uri, "NBD URI")->required();
    app.add_option("--rw", o.rw, "read|write|randread|randwrite|randrw|verify")
        ->check(CLI::IsMember({"read", "write", "randread", "randwrite", "randrw", "verify"}));
    app.add_option("--bs", bs, "block size (512, 4k, 1M, ...)");
    app.add_option("--qd", o.qd, "queue depth")->check(CLI::Range(1, 1024));
    app.add_option("--seconds", o.seconds, "run time");
    app.add_option("--engine", engine, "unbd|libnbd")->check(CLI::IsMember({"unbd", "libnbd"}));
    app.add_option("--area", o.area, "bytes of the export to use (0: all, at most 1 GiB)");
    app.add_option("--max-chain", o.max_chain_sqes, "unbd: most SQEs in one send chain");
    app.add_option("--payload", o.payload, "unbd: payload ops")
        ->check(CLI::IsMember({"user_copy", "read_write_fixed", "send_recv_fixed", "send_zc_fixed"}));
    bool no_defer = false;
    app.add_flag("--no-defer-taskrun", no_defer, "unbd: ring without SINGLE_ISSUER/DEFER_TASKRUN");
    bool no_batch = false;
    app.add_flag("--no-batch-wakeups", no_batch, "unbd: wake on every completion (no io_uring min_wait)");
    app.add_flag("--json", json, "one JSON object on stdout");
    CLI11_PARSE(app, argc, argv);
    o.bs = static_cast<uint32_t>(parse_size(bs));
    o.defer_taskrun = !no_defer;
    o.batch_wakeups = !no_batch;
    try {
        Result r = engine == "unbd" ? run_unbd(o) : run_libnbd(o);
        const double ios = static_cast<double>(r.ios);
        const double iops = ios / r.seconds;
        const double mib_s = static_cast<double>(r.bytes) / r.seconds / (1 << 20);
        const double cpu = ios > 0 ? r.cpu_seconds * 1e6 / ios : 0;
        if (json) {
            nlohmann::json j = {{"engine", engine},    {"rw", o.rw},           {"bs", o.bs},
                                {"qd", o.qd},          {"seconds", r.seconds}, {"ios", r.ios},
                                {"iops", iops},        {"mib_s", mib_s},       {"cpu_us_per_io", cpu},
                                {"lat_p50_us", r.p50_us}, {"lat_p99_us", r.p99_us}, {"errors", r.errors},
                                {"verify_failures", r.verify_failures}, {"detail", r.detail}};
            std::cout << j.dump() << "\n";
        } else {
            std::printf("%s %s bs=%u qd=%u: %.0f IOPS, %.1f MiB/s, %.2f us CPU/IO, p50 %.1f us, p99 %.1f us%s\n",
                        engine.c_str(), o.rw.c_str(), o.bs, o.qd, iops, mib_s, cpu, r.p50_us, r.p99_us,
                        r.detail.empty() ? "" : (" (" + r.detail + ")").c_str());
            if (r.errors || r.verify_failures)
                std::printf("errors: %llu, verify failures: %llu\n", static_cast<unsigned long long>(r.errors),
                            static_cast<unsigned long long>(r.verify_failures));
        }
        return r.errors || r.verify_failures ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unbd-bench: %s\n", e.what());
        return 1;
    }
}
