// The engine under pressure and failure, against real nbdkit: ordering with
// a tiny socket send buffer and a slow server (the test that catches
// interleaved chains), server errors on the right requests, and a server
// killed with requests in flight.
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "integration/support/nbdkit.h"

using namespace unbd;
using namespace unbd::test;
using namespace std::chrono_literals;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {

void ordering_under_pressure(bool tcp, nbd::PayloadOps ops, bool stepwise = false) {
    CAPTURE(nbd::name(ops));
    CAPTURE(stepwise);
    NbdkitProcess server({"--filter=delay", "memory", "64M", "delay-write=2ms"}, tcp);
    constexpr uint32_t kSize = 512 * 1024;
    constexpr std::size_t kCount = 64;
    auto fe = connect_engine(server.uri(),
                             {.queue_depth = 32, .buffer_bytes = kSize, .payload_ops = ops, .stepwise_sends = stepwise});
    // Far below one payload (the kernel doubles it). TCP over loopback with a
    // tiny buffer crawls (ACK pacing), so it gets a bit more room.
    const int sndbuf = tcp ? 131072 : 4096;
    REQUIRE(::setsockopt(fe->socket_fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
    std::size_t ok = 0;
    REQUIRE(fe->run_batch(
        kCount,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(fe->buffer(tag).data(), kSize, 500 + i);
            return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * kSize, .length = kSize};
        },
        [&](std::size_t, uint16_t, int r) { ok += r == static_cast<int>(kSize); }, 30s));
    CHECK(ok == kCount);
    CAPTURE(fe->session().failure_reason());
    CHECK_FALSE(fe->session().failed());
    MESSAGE("chains " << fe->session().stats().chains << ", broken by short sends "
                      << fe->session().stats().broken_chains);
    // Stepwise, only unlinked sends without MSG_WAITALL keep the order: the
    // buffer is small enough that some of them must come back short.
    if (stepwise) CHECK(fe->session().stats().broken_chains > 0);
    Oracle o(server.uri());
    for (std::size_t i = 0; i < kCount; ++i) {
        auto d = o.pread(i * kSize, kSize);
        REQUIRE_MESSAGE(check_pattern(d.data(), kSize, 500 + i), "write " << i);
    }
}

}  // namespace

TEST_CASE("engine: large writes in flight with a tiny send buffer stay in order (Unix)") {
    ordering_under_pressure(false, nbd::PayloadOps::ReadWriteFixed);
    ordering_under_pressure(false, nbd::PayloadOps::UserCopy);
}

TEST_CASE("engine: large writes in flight with a tiny send buffer stay in order (TCP)") {
    ordering_under_pressure(true, nbd::PayloadOps::ReadWriteFixed);
    ordering_under_pressure(true, nbd::PayloadOps::UserCopy);
    ordering_under_pressure(true, nbd::PayloadOps::SendZcFixed);  // SEND_ZC: TCP only
}

// How sends go on a kTLS socket (no MSG_WAITALL, one SQE at a time), on
// plain sockets: the host has no kTLS. (send_recv_fixed, the VM's zero-copy
// mode, runs stepwise on kTLS in vm/attach-ktls.)
TEST_CASE("engine: stepwise sends with a tiny send buffer stay in order") {
    ordering_under_pressure(false, nbd::PayloadOps::ReadWriteFixed, true);
    ordering_under_pressure(true, nbd::PayloadOps::ReadWriteFixed, true);
}

TEST_CASE("engine: server write errors land on the failing requests only") {
    NbdkitProcess server({"--filter=error", "memory", "16M", "error-pwrite=ENOSPC", "error-pwrite-rate=40%"});
    constexpr std::size_t kCount = 200;
    auto fe = connect_engine(server.uri(), {.queue_depth = 32, .buffer_bytes = 4096});
    std::vector<int> results(kCount, 1);
    REQUIRE(fe->run_batch(
        kCount,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(fe->buffer(tag).data(), 4096, 900 + i);
            // Even i write, odd i read (reads never fail with this filter).
            return BlockRequest{.tag = tag, .op = i % 2 ? BlockOp::Read : BlockOp::Write, .offset = i * 4096,
                                .length = 4096};
        },
        [&](std::size_t i, uint16_t, int r) { results[i] = r; }));
    CAPTURE(fe->session().failure_reason());
    CHECK_FALSE(fe->session().failed());
    Oracle o(server.uri());
    std::size_t failed = 0;
    for (std::size_t i = 0; i < kCount; ++i) {
        CAPTURE(i);
        if (i % 2) {
            CHECK(results[i] == 4096);
            continue;
        }
        REQUIRE((results[i] == 4096 || results[i] == -ENOSPC));
        auto d = o.pread(i * 4096, 4096);
        if (results[i] == 4096) {
            CHECK(check_pattern(d.data(), 4096, 900 + i));
        } else {
            ++failed;
            CHECK(all_zero(d.data(), 4096));  // the failed write never reached the plugin
        }
    }
    CHECK(failed > 5);
    CHECK(failed < kCount / 2 - 5);
}

TEST_CASE("engine: EIO on every read maps to -EIO") {
    NbdkitProcess server({"--filter=error", "memory", "16M", "error-pread=EIO", "error-pread-rate=100%"});
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 0, .length = 65536}) == -EIO);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096}) == 4096);
    CAPTURE(fe->session().failure_reason());
    CHECK_FALSE(fe->session().failed());
}

TEST_CASE("engine: server killed mid-stream, every request accounted for") {
    NbdkitProcess server({"--filter=delay", "memory", "16M", "delay-read=300ms"});
    constexpr uint16_t kDepth = 32;
    auto fe = connect_engine(server.uri(), {.queue_depth = kDepth, .buffer_bytes = 65536});
    std::vector<int> results(kDepth, 1);
    std::size_t done = 0;
    fe->set_on_complete([&](uint16_t tag, int r) {
        results[tag] = r;
        ++done;
    });
    for (uint16_t t = 0; t < kDepth; ++t)
        fe->submit({.tag = t, .op = t % 2 ? BlockOp::Read : BlockOp::Write, .offset = t * 65536ull, .length = 65536});
    fe->run_until([&] { return false; }, 100ms);  // let everything reach the server
    server.kill_now();
    REQUIRE(fe->run_until([&] { return done == kDepth; }, 5s));
    CHECK(fe->session().failed());
    MESSAGE("failure: " << fe->session().failure_reason());
    for (uint16_t t = 0; t < kDepth; ++t) {
        CAPTURE(t);
        CHECK((results[t] == 65536 || results[t] == -EIO));
    }
    for (uint16_t t = 1; t < kDepth; t += 2) CHECK(results[t] == -EIO);  // no read got its delayed reply
}

// Unix sockets have no zero-copy send: the kernel refuses SEND_ZC with
// EOPNOTSUPP on any version. That is our own op failing, not the server
// going away: every request must still complete (-EIO), promptly.
TEST_CASE("engine: the kernel refusing our send op fails requests, never hangs") {
    NbdkitProcess server({"memory", "16M"});
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536,
                                            .payload_ops = nbd::PayloadOps::SendZcFixed});
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096}, 5s) == -EIO);
    CHECK(fe->session().failed());
    MESSAGE("failure: " << fe->session().failure_reason());
}

// A frontend that submits again from its completion callback (the
// benchmark does) after the connection is gone: each resubmission fails
// at once, and must finish in a later step, not within the same one
// (that spun forever, growing a vector until std::bad_alloc).
TEST_CASE("engine: resubmitting from the completion callback after a failure does not spin") {
    NbdkitProcess server({"memory", "16M"});
    constexpr uint16_t kDepth = 4;
    auto fe = connect_engine(server.uri(), {.queue_depth = kDepth, .buffer_bytes = 65536});
    server.kill_now();
    std::size_t completions = 0;
    fe->set_on_complete([&](uint16_t tag, int r) {
        CHECK(r == -EIO);
        // Bounded, so that a regression fails here instead of hanging.
        if (++completions < 100'000) fe->submit({.tag = tag, .op = BlockOp::Read, .offset = 0, .length = 4096});
    });
    for (uint16_t t = 0; t < kDepth; ++t) fe->submit({.tag = t, .op = BlockOp::Read, .offset = 0, .length = 4096});
    REQUIRE(fe->run_until([&] { return fe->session().failed() && completions >= kDepth; }, 5s));
    const std::size_t before = completions;
    fe->step(std::chrono::milliseconds(10));  // it runs prepare_sqes twice
    CHECK(completions - before <= 2 * kDepth);
}
