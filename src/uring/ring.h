// Ring: one io_uring, owned. The thread that creates it is its only issuer.
//
// Setup asks for SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN and drops them
// on kernels that refuse (EINVAL), so the same code runs on 6.0+.
// Errors: the liburing calls return -errno; this file turns setup failures
// into unbd::Error, everything on the hot path stays -errno.
#pragma once

#include <liburing.h>

#include <cstdint>

namespace unbd::uring {

struct RingOptions {
    unsigned entries = 64;
    unsigned cq_entries = 0;  // 0: the kernel default (2 * entries)
    bool sqe128 = false;      // 128-byte SQEs, needed for ublk control commands
    bool fast_taskrun = true; // SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN when available
};

class Ring {
public:
    explicit Ring(const RingOptions& options);
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    Ring(Ring&&) = delete;
    Ring& operator=(Ring&&) = delete;

    io_uring* raw() noexcept { return &ring_; }
    unsigned setup_flags() const noexcept { return flags_; }
    bool sqe128() const noexcept { return (flags_ & IORING_SETUP_SQE128) != 0; }
    unsigned sq_space_left() noexcept { return io_uring_sq_space_left(&ring_); }

    // A cleared SQE (128 bytes on SQE128 rings). When the SQ is full it
    // submits what is queued first: a full ring means "wait", never "fail".
    io_uring_sqe* get_sqe();

    // Makes sure `n` SQEs can be taken with get_sqe() without an implicit
    // submit in between, so a link chain is never cut: submits what is
    // queued when space is short. False when n exceeds the SQ size.
    bool reserve(unsigned n) noexcept;
    unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }

    int submit() noexcept { return io_uring_submit(&ring_); }
    // Waits at most `timeout_us` for wait_nr CQEs. -ETIME on timeout.
    int submit_and_wait_timeout(unsigned wait_nr, long long timeout_us) noexcept;
    // The same, but once min_wait_us have passed it returns as soon as one
    // CQE is there: the kernel does not wake the thread for each of the
    // first wait_nr - 1 (uring/wake_batch.h). Needs has_min_wait().
    // -ETIME on timeout, -errno on failure.
    int submit_and_wait_min(unsigned wait_nr, unsigned min_wait_us, long long timeout_us) noexcept;
    // IORING_FEAT_MIN_TIMEOUT, Linux 6.12.
    bool has_min_wait() const noexcept { return (features_ & kFeatMinTimeout) != 0; }
    int submit_and_wait(unsigned wait_nr) noexcept { return io_uring_submit_and_wait(&ring_, wait_nr); }

    // Calls fn(const io_uring_cqe&) for every ready CQE, marking each seen
    // only after fn returns. Returns how many were handled.
    template <typename Fn>
    unsigned drain_cqes(Fn&& fn) {
        unsigned n = 0;
        io_uring_cqe* cqe = nullptr;
        while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
            fn(*cqe);
            io_uring_cqe_seen(&ring_, cqe);
            ++n;
        }
        return n;
    }

private:
    io_uring ring_{};
    unsigned flags_ = 0;
    unsigned features_ = 0;
    static constexpr unsigned kFeatMinTimeout = 1U << 15;  // not in bookworm's liburing 2.3 headers
};

}  // namespace unbd::uring
