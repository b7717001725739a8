#include "uring/ring.h"

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace unbd::uring {

namespace {

int try_setup(io_uring* ring, const RingOptions& o, unsigned flags, unsigned* features) {
    io_uring_params p{};
    p.flags = flags;
    if (o.cq_entries != 0) {
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = o.cq_entries;
    }
    const int ret = io_uring_queue_init_params(o.entries, ring, &p);
    *features = p.features;
    return ret;
}

__kernel_timespec timespec_from_us(long long us) {
    __kernel_timespec ts{};
    ts.tv_sec = us / 1'000'000;
    ts.tv_nsec = (us % 1'000'000) * 1000;
    return ts;
}

}  // namespace

Ring::Ring(const RingOptions& options) {
    unsigned base = options.sqe128 ? IORING_SETUP_SQE128 : 0;
    // DEFER_TASKRUN (6.1) needs SINGLE_ISSUER (6.0); COOP_TASKRUN is 5.19.
    const unsigned candidates[] = {
        base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
        base | IORING_SETUP_COOP_TASKRUN,
        base,
    };
    int ret = -EINVAL;
    for (unsigned flags : candidates) {
        if (!options.fast_taskrun && flags != base) continue;
        ret = try_setup(&ring_, options, flags, &features_);
        if (ret == 0) {
            flags_ = flags | (options.cq_entries ? IORING_SETUP_CQSIZE : 0);
            return;
        }
        if (ret != -EINVAL) break;
    }
    throw Error(errno_text("cannot create an io_uring", ret), -ret);
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

io_uring_sqe* Ring::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
    }
    std::memset(static_cast<void*>(sqe), 0, sqe128() ? 128 : sizeof(io_uring_sqe));
    return sqe;
}

bool Ring::reserve(unsigned n) noexcept {
    if (n > sq_entries()) return false;
    while (io_uring_sq_space_left(&ring_) < n) {
        if (io_uring_submit(&ring_) < 0) return false;
    }
    return true;
}

int Ring::submit_and_wait_timeout(unsigned wait_nr, long long timeout_us) noexcept {
    __kernel_timespec ts = timespec_from_us(timeout_us);
    io_uring_cqe* cqe = nullptr;
    return io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
}

int Ring::submit_and_wait_min(unsigned wait_nr, unsigned min_wait_us, long long timeout_us) noexcept {
    // liburing 2.3 cannot pass min_wait: submit, then wait with our own
    // io_uring_getevents_arg, whose `pad` is min_wait_usec since 6.12.
    const int sub = io_uring_submit(&ring_);
    if (sub < 0) return sub;
    __kernel_timespec ts = timespec_from_us(timeout_us);
    io_uring_getevents_arg arg{};
    arg.pad = min_wait_us;
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    // liburing's io_uring_enter2 returns -errno itself (errno is not set).
    return io_uring_enter2(ring_.ring_fd, 0, wait_nr, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                           reinterpret_cast<sigset_t*>(&arg), sizeof arg);
}

}  // namespace unbd::uring
