// Fuzzes the transmission reply reader's decisions (judge_reply and the
// request planning in src/nbd/request_slot.h) with the input as the
// server's reply stream, while requests are in flight.
//
// Input:
//   [0]    export: bit 0 SEND_FLUSH, bit 1 SEND_FUA, bit 2 SEND_TRIM,
//          bit 3 SEND_WRITE_ZEROES
//   [1]    minimum block = 1 << ([1] % 13); [2] maximum payload =
//          minimum << ([2] % 8); queue depth = [3] % 8 + 1
//   then per tag, 4 bytes: op (% 5), bit 3 FUA; length in minimum blocks
//          (1 + byte % 64, READ/WRITE capped at 64 KiB like max_request);
//          how many of its planned parts are sent (byte % 8; 7: all)
//   the rest: the server's bytes, 16-byte simple reply headers, each
//          successful READ reply followed by its payload.
// The harness does what Session does with each verdict; a request whose
// parts are all answered is submitted again (a new generation, so old
// cookies turn stale), a sent FUA flush included. Checked: payload lands
// inside the request's buffer, only sent
// parts of live requests are answered, and no count underflows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "nbd/request_slot.h"

using namespace unbd;
using Kind = nbd::ReplyVerdict::Kind;

namespace {

constexpr uint32_t kMaxRequestBytes = 64 * 1024;

void check(bool ok) {
    if (!ok) std::abort();
}

struct Tag {
    nbd::BlockRequest req;
    uint8_t sent_parts = 0;  // 7: all
    std::unique_ptr<std::byte[]> buffer;
};

void send_parts(nbd::RequestSlot& s, uint8_t how_many) {
    while (s.next_part < s.end_part && (how_many == 7 || s.next_part < how_many)) s.parts[s.next_part++] = nbd::PartState::Sent;
}

void submit(nbd::RequestSlot& s, Tag& t, const nbd::ExportInfo& info, uint32_t chunk) {
    s.req = t.req;
    s.active = true;
    ++s.generation;
    nbd::plan_request(s, info, chunk);
    check(s.data_parts >= 1 && s.parts.size() == s.data_parts + 1u);
    send_parts(s, t.sent_parts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    nbd::ExportInfo info;
    info.size = 1ull << 40;
    info.transmission_flags = proto::kFlagHasFlags;
    if (data[0] & 1) info.transmission_flags |= proto::kFlagSendFlush;
    if (data[0] & 2) info.transmission_flags |= proto::kFlagSendFua;
    if (data[0] & 4) info.transmission_flags |= proto::kFlagSendTrim;
    if (data[0] & 8) info.transmission_flags |= proto::kFlagSendWriteZeroes;
    info.block_size_min = 1u << (data[1] % 13);
    info.block_size_max = info.block_size_min << (data[2] % 8);
    const std::size_t depth = data[3] % 8 + 1;
    data += 4;
    size -= 4;
    if (size < depth * 4) return 0;
    const uint32_t chunk = nbd::split_size(info, kMaxRequestBytes);
    check(chunk >= info.block_size_min && chunk % info.block_size_min == 0);

    std::vector<nbd::RequestSlot> slots(depth);
    std::vector<Tag> tags(depth);
    for (std::size_t i = 0; i < depth; ++i, data += 4, size -= 4) {
        nbd::BlockRequest& r = tags[i].req;
        r.tag = static_cast<uint16_t>(i);
        r.op = static_cast<nbd::BlockOp>(data[0] % 5);
        r.fua = (data[0] & 8) != 0;
        r.no_hole = (data[0] & 16) != 0;
        uint32_t blocks = 1 + data[1] % 64;
        const bool split = r.op == nbd::BlockOp::Read || r.op == nbd::BlockOp::Write;
        if (split) blocks = std::min(blocks, std::max(1u, kMaxRequestBytes / info.block_size_min));
        r.length = r.op == nbd::BlockOp::Flush ? 0 : blocks * info.block_size_min;
        r.offset = uint64_t{data[2]} * info.block_size_min;
        tags[i].sent_parts = data[3] % 8;
        // Exactly the request's size, so ASan sees a byte written past it;
        // only a READ gets payload.
        if (r.op == nbd::BlockOp::Read) tags[i].buffer = std::make_unique_for_overwrite<std::byte[]>(r.length);
        submit(slots[i], tags[i], info, chunk);
    }

    auto stream = std::as_bytes(std::span(data, size));
    while (stream.size() >= proto::kSimpleReplySize) {
        const auto header = stream.first<proto::kSimpleReplySize>();
        stream = stream.subspan(proto::kSimpleReplySize);
        const nbd::ReplyVerdict v = nbd::judge_reply(header, slots, chunk);
        if (v.kind != Kind::Replied && v.kind != Kind::Payload) return 0;  // the session fails here
        nbd::RequestSlot& s = slots[v.cookie.tag];
        Tag& t = tags[v.cookie.tag];
        check(s.active && s.generation == v.cookie.generation && v.cookie.part < s.end_part);
        check(s.parts[v.cookie.part] == nbd::PartState::Sent && s.parts_pending > 0);
        if (v.kind == Kind::Payload) {
            check(s.cmd == proto::Cmd::Read && v.error == 0 && v.length > 0);
            check(v.buf_offset < s.req.length && v.length <= s.req.length - v.buf_offset);
            const std::size_t n = std::min<std::size_t>(v.length, stream.size());
            std::memcpy(t.buffer.get() + v.buf_offset, stream.data(), n);
            stream = stream.subspan(n);
            if (n < v.length) return 0;  // the server closed mid-payload
        }
        if (v.error != 0 && s.result == 0) s.result = v.error;
        if (!nbd::mark_replied(s, v.cookie.part)) continue;
        if (s.flush_after && s.result == 0) {  // Session::maybe_complete's FUA flush
            s.flush_after = false;
            s.end_part = s.data_parts + 1;
            s.parts_pending = 1;
            send_parts(s, 7);
            continue;
        }
        s.active = false;
        submit(s, t, info, chunk);
    }
    return 0;
}
