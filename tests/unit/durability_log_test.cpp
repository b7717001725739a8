// The durability log's bookkeeping: ring allocation, FLUSH marks, bounds,
// and the pure decisions around it (export comparison, mode choice).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <vector>

#include "daemon/attach_plan.h"
#include "nbd/durability_log.h"
#include "nbd/export_compat.h"

using namespace unbd;
using nbd::BlockOp;
using nbd::BlockRequest;
using nbd::Durability;
using nbd::DurabilityLog;

namespace {
BlockRequest write_req(uint64_t off, uint32_t len) { return {.op = BlockOp::Write, .offset = off, .length = len}; }
}  // namespace

TEST_CASE("durability log: a FLUSH drops only what was acknowledged before it was sent") {
    DurabilityLog log(Durability::Replay, 1 << 20);
    auto a = log.reserve(4096);
    auto b = log.reserve(4096);
    REQUIRE(a);
    REQUIRE(b);
    log.acknowledged(*a, write_req(0, 4096));
    const uint64_t mark = log.flush_mark();  // FLUSH sent now
    log.acknowledged(*b, write_req(8192, 4096));  // acknowledged after: not covered
    log.flushed(mark);
    uint64_t replay_mark = 0;
    const auto left = log.unflushed(&replay_mark);
    REQUIRE(left.size() == 1);
    CHECK(left[0].offset == 8192);
    CHECK(log.has_unflushed());
    log.flushed(replay_mark);
    CHECK_FALSE(log.has_unflushed());
    CHECK(log.stats().bytes == 0);
}

TEST_CASE("durability log: the data written at a reservation reads back for replay") {
    DurabilityLog log(Durability::Replay, 64 << 10);
    auto r = log.reserve(8192);
    REQUIRE(r);
    std::vector<std::byte> data(8192);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::byte(i * 7);
    REQUIRE(::pwrite(log.data_fd(), data.data(), data.size(), static_cast<off_t>(r->file_offset)) == 8192);
    log.acknowledged(*r, write_req(1 << 20, 8192));
    uint64_t mark = 0;
    const auto entries = log.unflushed(&mark);
    REQUIRE(entries.size() == 1);
    std::vector<std::byte> back(8192);
    log.read_data(entries[0], back.data());
    CHECK(std::memcmp(back.data(), data.data(), data.size()) == 0);
}

TEST_CASE("durability log: the arena is a bounded ring - freed room is reused in order") {
    DurabilityLog log(Durability::Replay, 16384);
    auto a = log.reserve(8192);
    auto b = log.reserve(8192);
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(log.reserve(4096));  // full
    CHECK(log.stats().full_events == 1);
    // Freeing the newest does not free the oldest's room.
    log.release(*b);
    auto c = log.reserve(8192);
    REQUIRE(c);
    CHECK(c->file_offset == 8192);
    log.acknowledged(*a, write_req(0, 8192));
    log.acknowledged(*c, write_req(8192, 8192));
    CHECK_FALSE(log.reserve(1));
    log.flushed(log.flush_mark());
    auto d = log.reserve(16384);  // everything free again: from the start
    REQUIRE(d);
    CHECK(d->file_offset == 0);
    CHECK_FALSE(log.reserve(20000));  // never more than the capacity
}

TEST_CASE("durability log: wrapping keeps blocks contiguous") {
    DurabilityLog log(Durability::Replay, 10000);
    auto a = log.reserve(4000);
    auto b = log.reserve(4000);
    REQUIRE(a);
    REQUIRE(b);
    log.release(*a);  // 0..4000 free, 8000..10000 free (2000: too small for 3000)
    auto c = log.reserve(3000);
    REQUIRE(c);
    CHECK(c->file_offset == 0);  // wrapped
    CHECK_FALSE(log.reserve(1500));  // 3000..4000 is only 1000 bytes
    auto d = log.reserve(1000);
    REQUIRE(d);
    CHECK(d->file_offset == 3000);
}

TEST_CASE("durability log: TRIM and WRITE_ZEROES keep ranges only - their count is bounded too") {
    DurabilityLog log(Durability::Replay, 4 << 20);  // 1024 entries at most
    std::size_t taken = 0;
    while (auto r = log.reserve(0)) {
        log.acknowledged(*r, {.op = BlockOp::Trim, .offset = taken * 4096, .length = 4096});
        if (++taken > 5000) break;
    }
    CHECK(taken == 1024);
    CHECK(log.stats().bytes == 0);
    log.flushed(log.flush_mark());
    CHECK(log.reserve(0));
}

TEST_CASE("durability log: fail-flush counts without data, and poisons one FLUSH") {
    DurabilityLog log(Durability::FailFlush, 0);
    CHECK(log.data_fd() < 0);
    CHECK_FALSE(log.has_unflushed());
    log.acknowledged({}, write_req(0, 4096));
    CHECK(log.has_unflushed());
    log.poison_next_flush();
    CHECK(log.take_flush_poison());
    CHECK_FALSE(log.take_flush_poison());
    log.flushed(log.flush_mark());
    CHECK_FALSE(log.has_unflushed());
}

TEST_CASE("durability: mode names and the default per server") {
    CHECK(nbd::parse_durability("replay") == Durability::Replay);
    CHECK(nbd::parse_durability("fail-flush") == Durability::FailFlush);
    CHECK(nbd::parse_durability("trust-server") == Durability::TrustServer);
    CHECK_FALSE(nbd::parse_durability("yes"));
    CHECK(daemon::choose_durability(std::nullopt, true) == Durability::Replay);
    CHECK(daemon::choose_durability(Durability::FailFlush, true) == Durability::FailFlush);
    // A write-through server (no SEND_FLUSH) loses nothing: no log.
    CHECK(daemon::choose_durability(Durability::Replay, false) == Durability::TrustServer);
}

TEST_CASE("export compare: safe and unsafe changes between connections") {
    nbd::ExportInfo before;
    before.size = 64ull << 20;
    before.transmission_flags = proto::kFlagHasFlags | proto::kFlagSendFlush | proto::kFlagSendFua |
                                proto::kFlagSendTrim | proto::kFlagCanMultiConn;
    nbd::ExportInfo now = before;
    CHECK(nbd::compare_exports(before, now, true).unsafe.empty());
    CHECK(nbd::compare_exports(before, now, true).note.empty());

    now.size = 128ull << 20;
    auto c = nbd::compare_exports(before, now, true);
    CHECK(c.unsafe.empty());
    CHECK(c.note == "the export grew from 64 MiB to 128 MiB; the device keeps its size");

    now = before;
    now.size = 32ull << 20;
    CHECK(nbd::compare_exports(before, now, true).unsafe == "the export shrank from 64 MiB to 32 MiB");
    now = before;
    now.transmission_flags |= proto::kFlagReadOnly;
    CHECK(nbd::compare_exports(before, now, true).unsafe == "the export is read-only now");
    now = before;
    now.transmission_flags &= static_cast<uint16_t>(~proto::kFlagSendFlush);
    CHECK(nbd::compare_exports(before, now, true).unsafe == "the server no longer offers FLUSH");
    now = before;
    now.transmission_flags &= static_cast<uint16_t>(~proto::kFlagCanMultiConn);
    CHECK(nbd::compare_exports(before, now, true).unsafe == "the server no longer offers multi-conn");
    CHECK(nbd::compare_exports(before, now, false).unsafe.empty());  // one connection: irrelevant
    now = before;
    now.block_size_min = 4096;
    CHECK(nbd::compare_exports(before, now, true).unsafe == "the minimum block size grew from 1 to 4096");
}
