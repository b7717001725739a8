// Request planning and reply judging (nbd/request_slot.h): the decisions
// of the session's reply reader, without a ring or a socket.
#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <vector>

#include "nbd/request_slot.h"

using namespace unbd;
using Kind = nbd::ReplyVerdict::Kind;

namespace {

std::array<std::byte, proto::kSimpleReplySize> header(nbd::Cookie c, uint32_t error = 0,
                                                      uint32_t magic = proto::kSimpleReplyMagic) {
    std::array<std::byte, proto::kSimpleReplySize> h{};
    proto::encode_simple_reply({error, c.encode()}, h);
    proto::store_be<uint32_t>(h.data(), magic);
    return h;
}

nbd::ExportInfo export_with(uint16_t flags, uint32_t min = 512, uint32_t max = 4096) {
    nbd::ExportInfo info;
    info.size = 1 << 20;
    info.transmission_flags = proto::kFlagHasFlags | flags;
    info.block_size_min = min;
    info.block_size_max = max;
    return info;
}

// A READ of `length` at tag 1, generation 1, every part sent.
std::vector<nbd::RequestSlot> one_read(uint32_t length, uint32_t chunk) {
    std::vector<nbd::RequestSlot> slots(2);
    nbd::RequestSlot& s = slots[1];
    s.req = {1, nbd::BlockOp::Read, 0, length};
    s.active = true;
    s.generation = 1;
    nbd::plan_request(s, export_with(0), chunk);
    for (uint16_t p = 0; p < s.end_part; ++p) s.parts[p] = nbd::PartState::Sent;
    return slots;
}

}  // namespace

TEST_CASE("request slot: the split size is a multiple of the minimum block, within the maximum payload") {
    CHECK(nbd::split_size(export_with(0, 512, 4096), 1 << 20) == 4096);
    CHECK(nbd::split_size(export_with(0, 512, 1000), 1 << 20) == 512);
    CHECK(nbd::split_size(export_with(0, 4096, 512), 1 << 20) == 4096);  // never below one block
    CHECK(nbd::split_size(export_with(0, 1, proto::kNoPayloadLimit), 65536) == 65536);
}

TEST_CASE("request slot: a READ is split into parts - FUA without SEND_FUA plans a trailing FLUSH") {
    auto slots = one_read(10000, 4096);
    CHECK(slots[1].data_parts == 3);
    uint32_t off = 0;
    CHECK(nbd::part_length(slots[1], 2, 4096, &off) == 10000 - 8192);
    CHECK(off == 8192);

    nbd::RequestSlot w;
    w.req = {0, nbd::BlockOp::Write, 0, 512, true};
    nbd::plan_request(w, export_with(proto::kFlagSendFlush), 4096);
    CHECK(w.flush_after);
    CHECK(w.cmd_flags == 0);
    nbd::plan_request(w, export_with(proto::kFlagSendFlush | proto::kFlagSendFua), 4096);
    CHECK_FALSE(w.flush_after);
    CHECK(w.cmd_flags == proto::kCmdFlagFua);
}

TEST_CASE("request slot: a successful READ reply is followed by exactly its part's payload") {
    auto slots = one_read(10000, 4096);
    const auto v = nbd::judge_reply(header({1, 2, 1}), slots, 4096);
    CHECK(v.kind == Kind::Payload);
    CHECK(v.buf_offset == 8192);
    CHECK(v.length == 10000 - 8192);
    const auto e = nbd::judge_reply(header({1, 0, 1}, proto::kEIO), slots, 4096);
    CHECK(e.kind == Kind::Replied);
    CHECK(e.error == -EIO);
    CHECK(nbd::judge_reply(header({1, 0, 1}, proto::kESHUTDOWN), slots, 4096).kind == Kind::ServerShutdown);
}

TEST_CASE("request slot: every bad reply is named before anything is touched") {
    auto slots = one_read(8192, 4096);
    CHECK(nbd::judge_reply(header({1, 0, 1}, 0, 0x12345678), slots, 4096).kind == Kind::BadMagic);
    CHECK(nbd::judge_reply(header({1, 0, 1}, 0, proto::kStructuredReplyMagic), slots, 4096).kind ==
          Kind::StructuredReply);
    CHECK(nbd::judge_reply(header({2, 0, 1}), slots, 4096).kind == Kind::UnknownTag);
    CHECK(nbd::judge_reply(header({0, 0, 0}), slots, 4096).kind == Kind::NotInFlight);  // inactive tag
    CHECK(nbd::judge_reply(header({1, 0, 2}), slots, 4096).kind == Kind::NotInFlight);  // stale generation
    CHECK(nbd::judge_reply(header({1, 2, 1}), slots, 4096).kind == Kind::NotInFlight);  // part never planned
    slots[1].parts[1] = nbd::PartState::Unsent;
    CHECK(nbd::judge_reply(header({1, 1, 1}), slots, 4096).kind == Kind::NotSent);
    CHECK_FALSE(nbd::mark_replied(slots[1], 0));
    CHECK(nbd::judge_reply(header({1, 0, 1}), slots, 4096).kind == Kind::Duplicate);
    CHECK(slots[1].parts_pending == 1);
}
