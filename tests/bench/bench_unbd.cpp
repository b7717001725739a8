// unbd engine for unbd-bench: connect_export + SyntheticFrontend, the same
// loop a ublk queue thread runs.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

#include "bench_engines.h"
#include "bench_workload.h"
#include "nbd/connect.h"
#include "nbd/synthetic_frontend.h"
#include "nbd/uri.h"
#include "ublk/zero_copy.h"
#include "uring/probe.h"

namespace unbd::bench {

Result run_unbd(const BenchOptions& o) {
    using clock = std::chrono::steady_clock;
    const nbd::Uri uri = nbd::parse_uri(o.uri);
    const nbd::PayloadOps mode = ublk::parse_payload_ops(o.payload);
    // A mode the kernel refuses would fail every request; say so instead.
    nbd::require_payload_ops(uring::probe_socket_ops(uri.socket_path.empty() ? AF_INET : AF_UNIX,
                                                     mode == nbd::PayloadOps::SendZcFixed),
                             mode, "--payload");
    nbd::Connection c = nbd::connect_export(uri, nbd::ConnectOptions{});
    Workload w(o, c.info.size);
    const auto qd = static_cast<uint16_t>(o.qd);
    nbd::SyntheticFrontend fe(std::move(c), nbd::SyntheticOptions{.queue_depth = qd,
                                                                      .buffer_bytes = o.bs,
                                                                      .payload_ops = mode,
                                                                      .max_chain_sqes = o.max_chain_sqes,
                                                                      .fast_taskrun = o.defer_taskrun,
                                                                      .batch_wakeups = o.batch_wakeups});
    if (!w.verifying())
        for (uint16_t t = 0; t < qd; ++t) w.fill(fe.buffer(t).data(), t);

    struct Slot {
        clock::time_point start;
        Workload::Io io;
    };
    std::vector<Slot> slots(qd);
    Result r;
    bool running = true;
    unsigned outstanding = 0;
    auto issue = [&](uint16_t tag) {
        Slot& s = slots[tag];
        s.io = w.next(tag);
        if (s.io.write && w.verifying()) w.fill(fe.buffer(tag).data(), s.io.seq);
        s.start = clock::now();
        fe.submit(nbd::BlockRequest{.tag = tag, .op = s.io.write ? nbd::BlockOp::Write : nbd::BlockOp::Read,
                                    .offset = s.io.offset, .length = o.bs});
        ++outstanding;
    };
    fe.set_on_complete([&](uint16_t tag, int res) {
        --outstanding;
        Slot& s = slots[tag];
        if (res != static_cast<int>(o.bs)) {
            ++r.errors;
        } else {
            if (!s.io.write && w.verifying() && !w.check(fe.buffer(tag).data(), s.io.seq)) ++r.verify_failures;
            w.record(s.start);
        }
        if (running) issue(tag);
    });

    const double cpu0 = Workload::cpu_now();
    const auto t0 = clock::now();
    const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.seconds));
    for (uint16_t t = 0; t < qd; ++t) issue(t);
    while (outstanding > 0) {
        if (running && clock::now() >= deadline) running = false;
        fe.step(std::chrono::seconds(1));
        if (fe.session().failed() && fe.session().drained()) break;
    }
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    r.cpu_seconds = Workload::cpu_now() - cpu0;
    if (fe.session().failed()) r.detail = fe.session().failure_reason();
    w.finish(r);
    const auto& st = fe.session().stats();
    if (r.detail.empty())
        r.detail = std::string(nbd::name(mode)) + ", " +
                   std::to_string(r.ios ? static_cast<double>(st.chains) / static_cast<double>(r.ios) : 0.0).substr(0, 4) +
                   " chains/IO";
    fe.disconnect();
    return r;
}

}  // namespace unbd::bench
