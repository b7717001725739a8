// WakeBatcher: how long a ring wait may hold its wake-up to gather more
// completions (io_uring's min_wait, Linux 6.12+: IORING_FEAT_MIN_TIMEOUT).
//
// With many requests in flight every reply would otherwise wake the queue
// thread on its own. Holding the wake-up for a small part of a request's
// round trip lets one wake-up reap several replies and send the next
// requests as one chain: fewer context switches and syscalls per I/O. The
// cost is bounded: the hold is at most 1/kRoundTripShare of the round trip
// and never above kMaxHoldUs, and there is none below kMinInFlight
// requests in flight. At QD1 a wait may cover a send's completion and the
// reply's (see submit_and_wait), which holds nothing up: nothing can be
// done between the two.
//
// The round trip comes from Little's law over the loop's own counts:
// requests in flight divided by the completion rate, which is measured
// over windows of at least kWindowNs. So there is one clock read per
// wake-up and none per request. Until a window has closed the hold is 0.
//
// Not thread-safe: one per queue thread, like its ring.
#pragma once

#include <cstdint>

#include "uring/ring.h"

namespace unbd::uring {

class WakeBatcher {
public:
    static constexpr unsigned kMinInFlight = 16;
    static constexpr unsigned kRoundTripShare = 16;
    static constexpr uint64_t kMaxHoldUs = 50;
    static constexpr uint64_t kWindowNs = 2'000'000;

    // enabled: the kernel has min_wait (Ring::has_min_wait) and the user
    // did not turn batching off.
    explicit WakeBatcher(bool enabled) noexcept : enabled_(enabled) {}

    // After each wake-up: the time now and how many requests completed
    // since the last call.
    void on_wake(uint64_t now_ns, unsigned completed) noexcept;

    // CLOCK_MONOTONIC in ns (vDSO: no syscall).
    static uint64_t clock_ns() noexcept;

    // How long the next wait may hold its wake-up, given what is in flight.
    // backlogged: data waits in the socket (a large READ payload being
    // received one recv at a time, a recv that came back full). Holding a
    // wake-up then holds the next recv too and the connection stalls, so
    // there is no hold.
    unsigned hold_us(unsigned in_flight, bool backlogged) const noexcept;

    // The current estimate of a request's round trip (0: none yet).
    uint64_t round_trip_ns(unsigned in_flight) const noexcept;

    // Submits what is queued and waits up to timeout_us for a CQE, holding
    // the wake-up as hold_us() says. Returns what the Ring's wait returns.
    // send_cqes: completions of sends in flight that need nothing from the
    // caller, with a reply's completion still to come after them
    // (nbd::Session::send_cqes_to_come). With one request in flight the wait
    // is for all of them and one more: a QD1 request's send completes inside
    // the submitting io_uring_enter, and waking for it alone took a second
    // trip around the loop before the wait for the reply.
    int submit_and_wait(Ring& ring, unsigned in_flight, bool backlogged, long long timeout_us,
                        unsigned send_cqes = 0) noexcept;
    // How many waits there were, and how many of them held their wake-up.
    uint64_t waits() const noexcept { return waits_; }
    uint64_t held_waits() const noexcept { return held_waits_; }

private:
    bool enabled_;
    uint64_t window_start_ns_ = 0;
    uint64_t window_completed_ = 0;
    double ns_per_completion_ = 0;  // EWMA over closed windows; 0: none yet
    uint64_t waits_ = 0;
    uint64_t held_waits_ = 0;
};

}  // namespace unbd::uring
