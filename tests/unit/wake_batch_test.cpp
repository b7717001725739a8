// The wake-up hold policy (uring/wake_batch.h) with a made-up clock, and
// the kernel's min_wait as Ring::submit_and_wait_min uses it.
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>

#include "uring/ring.h"
#include "uring/wake_batch.h"

using unbd::uring::Ring;
using unbd::uring::RingOptions;
using unbd::uring::WakeBatcher;

namespace {

constexpr uint64_t kMs = 1'000'000;

// Feeds `windows` closed windows of 2 ms in which `per_window` requests completed.
void feed(WakeBatcher& b, uint64_t& now, unsigned per_window, int windows) {
    for (int i = 0; i < windows; ++i) {
        now += WakeBatcher::kWindowNs;
        b.on_wake(now, per_window);
    }
}

}  // namespace

TEST_CASE("wake batching: no hold until a window has closed, then 1/16 of the round trip") {
    WakeBatcher b(true);
    uint64_t now = 5 * kMs;
    b.on_wake(now, 0);  // opens the first window
    CHECK(b.hold_us(32, false) == 0);
    // 2000 completions in 2 ms: 1 us each; 32 in flight -> 32 us round trip.
    feed(b, now, 2000, 1);
    CHECK(b.round_trip_ns(32) == 32'000);
    CHECK(b.hold_us(32, false) == 2);
    // 64 in flight at 10 us per completion: 640 us round trip -> 40 us.
    feed(b, now, 200, 40);
    CHECK(static_cast<double>(b.round_trip_ns(64)) == doctest::Approx(640'000).epsilon(0.001));
    CHECK(b.hold_us(64, false) >= 39);
    CHECK(b.hold_us(64, false) <= 40);
}

TEST_CASE("wake batching: never above the cap, none when shallow, backlogged or disabled") {
    WakeBatcher b(true);
    uint64_t now = 1 * kMs;
    b.on_wake(now, 0);
    feed(b, now, 10, 10);  // 200 us per completion: a slow server
    CHECK(b.hold_us(64, false) == WakeBatcher::kMaxHoldUs);
    CHECK(b.hold_us(WakeBatcher::kMinInFlight - 1, false) == 0);
    CHECK(b.hold_us(1, false) == 0);
    CHECK(b.hold_us(64, true) == 0);
    WakeBatcher off(false);
    uint64_t t = 1 * kMs;
    off.on_wake(t, 0);
    feed(off, t, 10, 10);
    CHECK(off.hold_us(64, false) == 0);
}

TEST_CASE("wake batching: an idle window keeps the last estimate") {
    WakeBatcher b(true);
    uint64_t now = 1 * kMs;
    b.on_wake(now, 0);
    feed(b, now, 100, 1);  // 20 us per completion
    const uint64_t before = b.round_trip_ns(16);
    feed(b, now, 0, 5);
    CHECK(b.round_trip_ns(16) == before);
    CHECK(before == 320'000);
}

TEST_CASE("Ring::submit_and_wait_min holds the wake-up for min_wait when fewer CQEs than asked are ready") {
    Ring ring(RingOptions{.entries = 8});
    if (!ring.has_min_wait()) {
        MESSAGE("this kernel has no IORING_FEAT_MIN_TIMEOUT (6.12+): the batcher stays off");
        CHECK_FALSE(WakeBatcher(ring.has_min_wait()).hold_us(64, false) > 0);
        return;
    }
    using clock = std::chrono::steady_clock;
    // One NOP ready at once, two asked for: the wait returns after min_wait
    // (20 ms), not at once and not at the 2 s timeout.
    io_uring_prep_nop(ring.get_sqe());
    const auto t0 = clock::now();
    const int ret = ring.submit_and_wait_min(2, 20'000, 2'000'000);
    const auto waited = clock::now() - t0;
    CHECK(ret >= 0);
    CHECK(waited >= std::chrono::milliseconds(19));
    CHECK(waited < std::chrono::milliseconds(1500));
    CHECK(ring.drain_cqes([](const io_uring_cqe&) {}) == 1);
    // Both there: no hold.
    io_uring_prep_nop(ring.get_sqe());
    io_uring_prep_nop(ring.get_sqe());
    const auto t1 = clock::now();
    CHECK(ring.submit_and_wait_min(2, 1'000'000, 2'000'000) >= 0);
    CHECK(clock::now() - t1 < std::chrono::milliseconds(900));
    CHECK(ring.drain_cqes([](const io_uring_cqe&) {}) == 2);
    // Nothing at all: -ETIME after the full timeout, as submit_and_wait_timeout says.
    CHECK(ring.submit_and_wait_min(2, 1'000, 30'000) == -ETIME);
}
