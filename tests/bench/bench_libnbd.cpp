// libnbd engine for unbd-bench: nbd_aio_pread/pwrite at the same queue
// depth, driven by nbd_poll — what a libnbd user would write.
#include <libnbd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include "bench_engines.h"
#include "bench_workload.h"

namespace unbd::bench {

namespace {

struct Slot {
    std::chrono::steady_clock::time_point start;
    Workload::Io io{};
    std::byte* buf = nullptr;
    bool done = false;
    int error = 0;
    std::vector<unsigned>* finished = nullptr;
    unsigned index = 0;
};

int on_done(void* user_data, int* error) {
    auto* s = static_cast<Slot*>(user_data);
    s->error = *error;
    s->finished->push_back(s->index);
    return 1;  // retire the command
}

}  // namespace

Result run_libnbd(const BenchOptions& o) {
    using clock = std::chrono::steady_clock;
    std::unique_ptr<nbd_handle, decltype(&nbd_close)> h(nbd_create(), &nbd_close);
    if (!h || nbd_connect_uri(h.get(), o.uri.c_str()) != 0)
        throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
    const int64_t size = nbd_get_size(h.get());
    if (size < 0) throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
    Workload w(o, static_cast<uint64_t>(size));

    std::vector<std::byte> memory(std::size_t{o.bs} * o.qd);
    std::vector<Slot> slots(o.qd);
    std::vector<unsigned> finished;
    finished.reserve(o.qd);
    for (unsigned i = 0; i < o.qd; ++i) {
        slots[i].buf = memory.data() + std::size_t{o.bs} * i;
        slots[i].finished = &finished;
        slots[i].index = i;
        if (!w.verifying()) w.fill(slots[i].buf, i);
    }
    Result r;
    unsigned outstanding = 0;
    auto issue = [&](unsigned i) {
        Slot& s = slots[i];
        s.io = w.next(i);
        if (s.io.write && w.verifying()) w.fill(s.buf, s.io.seq);
        s.start = clock::now();
        nbd_completion_callback cb{.callback = on_done, .user_data = &s, .free = nullptr};
        const int64_t cookie = s.io.write ? nbd_aio_pwrite(h.get(), s.buf, o.bs, s.io.offset, cb, 0)
                                          : nbd_aio_pread(h.get(), s.buf, o.bs, s.io.offset, cb, 0);
        if (cookie < 0) throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
        ++outstanding;
    };

    const double cpu0 = Workload::cpu_now();
    const auto t0 = clock::now();
    const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.seconds));
    for (unsigned i = 0; i < o.qd; ++i) issue(i);
    bool running = true;
    std::vector<unsigned> again;
    again.reserve(o.qd);
    while (outstanding > 0) {
        if (nbd_poll(h.get(), -1) < 0) throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
        if (running && clock::now() >= deadline) running = false;
        for (unsigned i : finished) {
            --outstanding;
            Slot& s = slots[i];
            if (s.error) {
                ++r.errors;
            } else {
                if (!s.io.write && w.verifying() && !w.check(s.buf, s.io.seq)) ++r.verify_failures;
                w.record(s.start);
            }
        }
        again.swap(finished);
        finished.clear();
        if (running)
            for (unsigned i : again) issue(i);
    }
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    r.cpu_seconds = Workload::cpu_now() - cpu0;
    w.finish(r);
    nbd_shutdown(h.get(), 0);
    return r;
}

}  // namespace unbd::bench
