#include "uring/ring.h"

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace unbd::uring {

namespace {

int try_setup(io_uring* ring, const RingOptions& o, unsigned flags) {
    io_uring_params p{};
    p.flags = flags;
    if (o.cq_entries != 0) {
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = o.cq_entries;
    }
    return io_uring_queue_init_params(o.entries, ring, &p);
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
        ret = try_setup(&ring_, options, flags);
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
    __kernel_timespec ts{};
    ts.tv_sec = timeout_us / 1'000'000;
    ts.tv_nsec = (timeout_us % 1'000'000) * 1000;
    io_uring_cqe* cqe = nullptr;
    return io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
}

}  // namespace unbd::uring
