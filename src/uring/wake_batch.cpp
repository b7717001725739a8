#include "uring/wake_batch.h"

#include <algorithm>
#include <chrono>

namespace unbd::uring {

uint64_t WakeBatcher::clock_ns() noexcept {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

void WakeBatcher::on_wake(uint64_t now_ns, unsigned completed) noexcept {
    if (!enabled_) return;
    if (window_start_ns_ == 0) {
        window_start_ns_ = now_ns;
        return;
    }
    window_completed_ += completed;
    const uint64_t elapsed = now_ns - window_start_ns_;
    if (elapsed < kWindowNs) return;
    // An idle window (nothing completed) says nothing about the round trip.
    if (window_completed_ > 0) {
        const double sample = static_cast<double>(elapsed) / static_cast<double>(window_completed_);
        ns_per_completion_ = ns_per_completion_ == 0 ? sample : (3 * ns_per_completion_ + sample) / 4;
    }
    window_start_ns_ = now_ns;
    window_completed_ = 0;
}

uint64_t WakeBatcher::round_trip_ns(unsigned in_flight) const noexcept {
    return static_cast<uint64_t>(ns_per_completion_ * in_flight);
}

unsigned WakeBatcher::hold_us(unsigned in_flight, bool backlogged) const noexcept {
    if (!enabled_ || backlogged || in_flight < kMinInFlight) return 0;
    const uint64_t hold = round_trip_ns(in_flight) / kRoundTripShare / 1000;
    return static_cast<unsigned>(std::min(hold, kMaxHoldUs));
}

int WakeBatcher::submit_and_wait(Ring& ring, unsigned in_flight, bool backlogged, long long timeout_us,
                                 unsigned send_cqes) noexcept {
    const unsigned hold = hold_us(in_flight, backlogged);
    ++waits_;
    if (hold == 0) return ring.submit_and_wait_timeout(in_flight == 1 ? 1 + send_cqes : 1, timeout_us);
    ++held_waits_;
    return ring.submit_and_wait_min(in_flight, hold, timeout_us);
}

}  // namespace unbd::uring
