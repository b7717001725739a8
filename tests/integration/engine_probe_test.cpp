// The socket payload-op probe and the uring building blocks the engine
// relies on, checked on this host's kernel.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include "nbd/payload.h"
#include "uring/probe.h"
#include "uring/ring.h"
#include "uring/sqe.h"
#include "uring/user_data.h"

using namespace unbd;

TEST_CASE("uring probe: READ_FIXED / WRITE_FIXED work on Unix and TCP sockets (6.15+)") {
    const auto unix_ops = uring::probe_socket_ops(AF_UNIX);
    const auto tcp_ops = uring::probe_socket_ops(AF_INET);
    MESSAGE("unix: " << unix_ops.describe() << "; tcp: " << tcp_ops.describe());
    CHECK(unix_ops.write_fixed);
    CHECK(unix_ops.read_fixed);
    CHECK(tcp_ops.write_fixed);
    CHECK(tcp_ops.read_fixed);
    CHECK_FALSE(unix_ops.send_zc_fixed);  // SEND_ZC is a TCP/UDP thing
    CHECK_FALSE(tcp_ops.send_zc_fixed);   // not tried unless asked (it is never chosen unasked)
    const auto tcp_with_zc = uring::probe_socket_ops(AF_INET, true);
    MESSAGE("tcp, SEND_ZC asked for: " << tcp_with_zc.describe());
    CHECK(tcp_with_zc.write_fixed);
    // Whatever the kernel offers, the choice is a fixed-buffer mode.
    CHECK(nbd::choose_payload_ops(unix_ops) != nbd::PayloadOps::UserCopy);
}

TEST_CASE("uring: reserve keeps a chain in one submission window") {
    uring::Ring ring(uring::RingOptions{.entries = 8});
    for (int i = 0; i < 6; ++i) uring::prep_nop(ring.get_sqe());
    CHECK(ring.sq_space_left() == 2);
    REQUIRE(ring.reserve(5));  // submits the 6 queued NOPs first
    CHECK(ring.sq_space_left() >= 5);
    CHECK_FALSE(ring.reserve(9));  // larger than the SQ: refused, never a cut chain
    ring.submit_and_wait_timeout(6, 1'000'000);
    unsigned n = ring.drain_cqes([](const io_uring_cqe&) {});
    CHECK(n == 6);
}

TEST_CASE("uring: user_data routes by owner and instance") {
    const uint64_t a = uring::UserData{uring::Owner::NbdSession, 3, 1, 77}.encode();
    const uint64_t b = uring::UserData{uring::Owner::UblkQueue, 3, 1, 77}.encode();
    CHECK(a != b);
    CHECK(uring::owner_of(a) == uring::Owner::NbdSession);
    CHECK(uring::owner_of(b) == uring::Owner::UblkQueue);
    CHECK(uring::UserData::decode(a).instance == 3);
    CHECK(uring::owner_of(0) == uring::Owner::None);
}
