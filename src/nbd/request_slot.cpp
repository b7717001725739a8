// Request planning and reply judging for one session (see request_slot.h).
#include "nbd/request_slot.h"

#include <algorithm>

namespace unbd::nbd {

uint32_t split_size(const ExportInfo& info, uint32_t max_request_bytes) {
    const uint32_t min = std::max<uint32_t>(1, info.block_size_min);
    const uint32_t max = std::min(info.block_size_max, max_request_bytes);
    return std::max(min, max / min * min);
}

void plan_request(RequestSlot& s, const ExportInfo& info, uint32_t chunk) {
    const BlockRequest& r = s.req;
    s.cmd_flags = 0;
    s.flush_after = false;
    switch (r.op) {
        case BlockOp::Read: s.cmd = proto::Cmd::Read; break;
        case BlockOp::Write: s.cmd = proto::Cmd::Write; break;
        case BlockOp::Flush: s.cmd = proto::Cmd::Flush; break;
        case BlockOp::Trim: s.cmd = proto::Cmd::Trim; break;
        case BlockOp::WriteZeroes:
            s.cmd = proto::Cmd::WriteZeroes;
            if (r.no_hole) s.cmd_flags |= proto::kCmdFlagNoHole;
            break;
    }
    if (r.fua && r.op != BlockOp::Read && r.op != BlockOp::Flush) {
        if (info.can_fua())
            s.cmd_flags |= proto::kCmdFlagFua;
        else if (info.can_flush())
            s.flush_after = true;  // else no write cache: the data is already stable
    }
    const bool split = r.op == BlockOp::Read || r.op == BlockOp::Write;
    s.data_parts = split ? static_cast<uint16_t>((r.length + chunk - 1) / chunk) : 1;
    s.end_part = s.data_parts;
    s.next_part = 0;
    s.parts_pending = s.data_parts;
    s.parts.assign(s.data_parts + 1u, PartState::Unsent);
    s.result = 0;
}

uint32_t part_length(const RequestSlot& s, uint16_t part, uint32_t chunk, uint32_t* buf_offset) {
    *buf_offset = 0;
    if (part >= s.data_parts) return 0;  // the FUA flush
    if (s.cmd != proto::Cmd::Read && s.cmd != proto::Cmd::Write) return s.req.length;
    *buf_offset = uint32_t{part} * chunk;
    return std::min(chunk, s.req.length - *buf_offset);
}

ReplyVerdict judge_reply(std::span<const std::byte, proto::kSimpleReplySize> header,
                         std::span<const RequestSlot> slots, uint32_t chunk) {
    using Kind = ReplyVerdict::Kind;
    ReplyVerdict v;
    const auto verdict = [&v](Kind kind) {
        v.kind = kind;
        return v;
    };
    const auto reply = proto::decode_simple_reply(header);
    if (!reply) {
        v.magic = proto::load_be<uint32_t>(header.data());
        v.kind = v.magic == proto::kStructuredReplyMagic ? Kind::StructuredReply : Kind::BadMagic;
        return v;
    }
    v.magic = proto::kSimpleReplyMagic;
    v.raw_cookie = reply->cookie;
    v.cookie = Cookie::decode(reply->cookie);
    const Cookie c = v.cookie;
    if (c.tag >= slots.size()) return verdict(Kind::UnknownTag);
    const RequestSlot& s = slots[c.tag];
    if (!s.active || s.generation != c.generation || c.part >= s.end_part) return verdict(Kind::NotInFlight);
    if (s.parts[c.part] == PartState::Unsent) return verdict(Kind::NotSent);
    if (s.parts[c.part] == PartState::Replied) return verdict(Kind::Duplicate);
    // A server shutting down (nbdkit on SIGTERM) refuses what is in flight:
    // the request did nothing, so it is re-sent once the connection is back.
    if (reply->error == proto::kESHUTDOWN) return verdict(Kind::ServerShutdown);
    v.kind = Kind::Replied;
    if (reply->error != 0) {
        v.error = -proto::errno_from_nbd_error(reply->error);
    } else if (c.part < s.data_parts && s.cmd == proto::Cmd::Read) {
        v.kind = Kind::Payload;
        v.length = part_length(s, c.part, chunk, &v.buf_offset);
    }
    return v;
}

bool mark_replied(RequestSlot& s, uint16_t part) {
    s.parts[part] = PartState::Replied;
    --s.parts_pending;
    return s.parts_pending == 0;
}

}  // namespace unbd::nbd
