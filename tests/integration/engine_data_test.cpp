// Engine data path against real nbdkit (memory plugin): every op at queue
// depths 1..256 and sizes 512 B .. the server maximum, checked with libnbd
// reading and writing the same server directly.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "integration/support/nbdkit.h"

using namespace unbd;
using namespace unbd::test;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {

constexpr uint64_t kDisk = 64ull << 20;

// Writes `count` requests of `size` bytes at distinct offsets with the
// engine at depth `qd`, then checks every byte with libnbd.
void engine_writes_oracle_reads(NbdkitProcess& server, uint16_t qd, uint32_t size, std::size_t count,
                                uint64_t seed, nbd::PayloadOps ops, bool fua = false) {
    auto fe = connect_engine(server.uri(), {.queue_depth = qd, .buffer_bytes = size, .payload_ops = ops});
    std::vector<int> results(count, 1);
    REQUIRE(fe->run_batch(
        count,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(fe->buffer(tag).data(), size, seed + i);
            return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * size % kDisk, .length = size, .fua = fua};
        },
        [&](std::size_t i, uint16_t, int r) { results[i] = r; }));
    CHECK_FALSE(fe->session().failed());
    for (std::size_t i = 0; i < count; ++i) REQUIRE(results[i] == static_cast<int>(size));
    CHECK(fe->disconnect());
    Oracle o(server.uri());
    for (std::size_t i = 0; i < count; ++i) {
        auto data = o.pread(i * size % kDisk, size);
        REQUIRE_MESSAGE(check_pattern(data.data(), size, seed + i), "request " << i << " size " << size << " qd " << qd);
    }
}

void oracle_writes_engine_reads(NbdkitProcess& server, uint16_t qd, uint32_t size, std::size_t count, uint64_t seed,
                                nbd::PayloadOps ops) {
    {
        Oracle o(server.uri());
        for (std::size_t i = 0; i < count; ++i) {
            std::vector<std::byte> d(size);
            fill_pattern(d.data(), size, seed + i);
            o.pwrite(i * size % kDisk, d);
        }
    }
    auto fe = connect_engine(server.uri(), {.queue_depth = qd, .buffer_bytes = size, .payload_ops = ops});
    std::size_t good = 0;
    REQUIRE(fe->run_batch(
        count,
        [&](std::size_t i, uint16_t tag) {
            std::memset(fe->buffer(tag).data(), 0xee, size);
            return BlockRequest{.tag = tag, .op = BlockOp::Read, .offset = i * size % kDisk, .length = size};
        },
        [&](std::size_t i, uint16_t tag, int r) {
            REQUIRE(r == static_cast<int>(size));
            REQUIRE_MESSAGE(check_pattern(fe->buffer(tag).data(), size, seed + i), "read " << i << " size " << size);
            ++good;
        }));
    CHECK(good == count);
    CHECK_FALSE(fe->session().failed());
}

}  // namespace

TEST_CASE("engine: single write then read round-trips through nbdkit") {
    NbdkitProcess server({"memory", "64M"});
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    fill_pattern(fe->buffer(0).data(), 4096, 7);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 8192, .length = 4096}) == 4096);
    std::memset(fe->buffer(0).data(), 0, 4096);
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 8192, .length = 4096}) == 4096);
    CHECK(check_pattern(fe->buffer(0).data(), 4096, 7));
    CHECK(fe->execute({.op = BlockOp::Flush}) == 0);
    CHECK(fe->disconnect());
}

// Both payload paths: fixed buffers (what ublk zero copy uses) and user copy.
constexpr nbd::PayloadOps kModes[] = {nbd::PayloadOps::ReadWriteFixed, nbd::PayloadOps::UserCopy};

TEST_CASE("engine: writes at queue depths 1..256 read back with libnbd") {
    NbdkitProcess server({"memory", "64M"});
    for (auto ops : kModes)
        for (uint16_t qd : {1, 2, 7, 32, 64, 128, 256}) {
            CAPTURE(qd);
            CAPTURE(nbd::name(ops));
            engine_writes_oracle_reads(server, qd, 4096, std::size_t{qd} * 3, qd * 1000, ops);
        }
}

TEST_CASE("engine: libnbd writes read back by the engine at queue depths 1..256") {
    NbdkitProcess server({"memory", "64M"});
    for (auto ops : kModes)
        for (uint16_t qd : {1, 3, 16, 64, 256}) {
            CAPTURE(qd);
            CAPTURE(nbd::name(ops));
            oracle_writes_engine_reads(server, qd, 4096, std::size_t{qd} * 3, qd * 7000, ops);
        }
}

TEST_CASE("engine: sizes from 512 B to the server maximum, both directions") {
    NbdkitProcess server({"memory", "64M"});
    for (auto ops : kModes)
        for (uint32_t size : {512u, 4096u, 65536u, 1u << 20, 4u << 20}) {
            CAPTURE(size);
            CAPTURE(nbd::name(ops));
            engine_writes_oracle_reads(server, 4, size, 6, size, ops);
            oracle_writes_engine_reads(server, 4, size, 6, size + 99, ops);
        }
}

// uring/wake_batch.h: with many requests in flight the loop's waits hold
// their wake-up (on 6.12+). Every write must still land and every read
// come back whole; the slow server keeps 32 in flight long enough for the
// round-trip estimate to form.
TEST_CASE("engine: held wake-ups at depth 32 lose and mix up nothing") {
    NbdkitProcess server({"--filter=delay", "memory", "64M", "delay-read=1ms", "delay-write=1ms"});
    constexpr uint32_t kSize = 4096;
    constexpr std::size_t kCount = 4096;
    auto fe = connect_engine(server.uri(), {.queue_depth = 32, .buffer_bytes = kSize,
                                            .payload_ops = nbd::PayloadOps::UserCopy});
    std::size_t good = 0;
    REQUIRE(fe->run_batch(
        kCount,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(fe->buffer(tag).data(), kSize, 90'000 + i);
            return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * kSize, .length = kSize};
        },
        [&](std::size_t, uint16_t, int r) { good += r == static_cast<int>(kSize); }));
    CHECK(good == kCount);
    good = 0;
    REQUIRE(fe->run_batch(
        kCount,
        [&](std::size_t i, uint16_t tag) {
            std::memset(fe->buffer(tag).data(), 0xee, kSize);
            return BlockRequest{.tag = tag, .op = BlockOp::Read, .offset = (kCount - 1 - i) * kSize, .length = kSize};
        },
        [&](std::size_t i, uint16_t tag, int r) {
            REQUIRE(r == static_cast<int>(kSize));
            REQUIRE_MESSAGE(check_pattern(fe->buffer(tag).data(), kSize, 90'000 + kCount - 1 - i), "read " << i);
            ++good;
        }));
    CHECK(good == kCount);
    CHECK_FALSE(fe->session().failed());
    MESSAGE("waits that held their wake-up: " << fe->wake_batcher().held_waits());
    if (fe->ring().has_min_wait()) CHECK(fe->wake_batcher().held_waits() > 0);
    CHECK(fe->disconnect());
    Oracle o(server.uri());
    for (std::size_t i = 0; i < kCount; i += 97) {
        auto d = o.pread(i * kSize, kSize);
        REQUIRE_MESSAGE(check_pattern(d.data(), kSize, 90'000 + i), "write " << i);
    }
}

// uring/wake_batch.h: at QD1 one wait covers a request's send and its
// reply, where the send's completion alone used to wake the loop first (two
// waits per write). Counted over 200 writes: a wait that timed out on a
// slow CI host counts too, hence the margin.
TEST_CASE("engine: at QD1 a write takes one wait, not one for its send and one for its reply") {
    NbdkitProcess server({"memory", "64M"});
    constexpr uint32_t kSize = 4096;
    constexpr std::size_t kCount = 200;
    for (auto ops : {nbd::PayloadOps::UserCopy, nbd::PayloadOps::ReadWriteFixed}) {  // what every kernel has
        CAPTURE(nbd::name(ops));
        auto fe = connect_engine(server.uri(), {.queue_depth = 1, .buffer_bytes = kSize, .payload_ops = ops});
        const uint64_t waits_before = fe->wake_batcher().waits();
        std::size_t good = 0;
        REQUIRE(fe->run_batch(
            kCount,
            [&](std::size_t i, uint16_t tag) {
                fill_pattern(fe->buffer(tag).data(), kSize, 70'000 + i);
                return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * kSize, .length = kSize};
            },
            [&](std::size_t, uint16_t, int r) { good += r == static_cast<int>(kSize); }));
        CHECK(good == kCount);
        const uint64_t waits = fe->wake_batcher().waits() - waits_before;
        MESSAGE("waits for " << kCount << " QD1 writes: " << waits);
        CHECK(waits < kCount * 3 / 2);
        CHECK(fe->disconnect());
        Oracle o(server.uri());
        for (std::size_t i = 0; i < kCount; i += 13) {
            auto d = o.pread(i * kSize, kSize);
            REQUIRE_MESSAGE(check_pattern(d.data(), kSize, 70'000 + i), "write " << i);
        }
    }
}
