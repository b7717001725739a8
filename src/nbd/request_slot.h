// RequestSlot: one tag's request as a Session tracks it on the wire (its
// NBD commands, "parts", and which of them were sent and answered), and
// what one simple reply header means for the slots. Pure: no I/O, no
// ring; the session's reply reader (reply_reader.cpp) acts on the verdict,
// and tests/fuzz/reply_fuzz.cpp drives the same code with hostile bytes.
//
// A request is planned into parts: READ and WRITE are split at `chunk`
// bytes (split_size: the server's maximum payload, a multiple of its
// minimum block), the other commands are one part; FUA on a server with
// FLUSH but without FUA adds a FLUSH part once the data parts are answered.
//
// judge_reply checks every field before anything is touched: magic, tag,
// generation, part, the part's state. A READ part answered without error
// is followed by exactly part_length() payload bytes, which belong at
// buf_offset of the tag's buffer; nothing outside [0, req.length) ever.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "nbd/block_request.h"
#include "nbd/cookie.h"
#include "nbd/export_info.h"
#include "proto/nbd_wire.h"

namespace unbd::nbd {

enum class PartState : uint8_t { Unsent, Sent, Replied };

struct RequestSlot {
    BlockRequest req;
    uint32_t generation = 0;
    bool active = false;
    proto::Cmd cmd = proto::Cmd::Read;
    uint16_t cmd_flags = 0;
    uint16_t data_parts = 0;      // NBD commands carrying the request itself
    bool flush_after = false;     // FUA emulated by a FLUSH once the data parts replied
    uint16_t next_part = 0;       // next part to put in a chain
    uint16_t end_part = 0;        // parts to send so far (data_parts, +1 for the flush)
    uint16_t parts_pending = 0;   // parts sent or to send whose reply has not come
    uint16_t payload_sends = 0;   // payload SQEs of this tag still in the kernel
    bool queued = false;          // in the session's send queue
    int result = 0;               // first error, or 0
    std::vector<PartState> parts;
};

// The READ/WRITE split size: at most the server's maximum payload and
// max_request_bytes, a multiple of the minimum block, at least one block.
uint32_t split_size(const ExportInfo& info, uint32_t max_request_bytes);

// Plans s.req (already validated against the export) into parts.
void plan_request(RequestSlot& s, const ExportInfo& info, uint32_t chunk);

// Bytes of `part` and where they start in the tag's buffer (0 for the FUA flush).
uint32_t part_length(const RequestSlot& s, uint16_t part, uint32_t chunk, uint32_t* buf_offset);

struct ReplyVerdict {
    enum class Kind : uint8_t {
        BadMagic,         // neither reply magic; `magic` says what came
        StructuredReply,  // never negotiated for the data path
        UnknownTag,       // the cookie names a tag beyond the slots
        NotInFlight,      // inactive tag, stale generation, or a part never planned
        NotSent,          // the part is planned but was not sent yet
        Duplicate,        // the part was answered already
        ServerShutdown,   // ESHUTDOWN: the server refuses what is in flight
        Replied,          // the part is answered; `error` is 0 or a negative errno
        Payload,          // a successful READ part: `length` bytes follow, for buf_offset
    };
    Kind kind = Kind::BadMagic;
    uint32_t magic = 0;
    uint64_t raw_cookie = 0;
    Cookie cookie;
    int error = 0;
    uint32_t buf_offset = 0;
    uint32_t length = 0;
};

ReplyVerdict judge_reply(std::span<const std::byte, proto::kSimpleReplySize> header,
                         std::span<const RequestSlot> slots, uint32_t chunk);

// Marks `part` answered (the caller records any error in s.result first);
// true when no part of the request is pending any more.
bool mark_replied(RequestSlot& s, uint16_t part);

}  // namespace unbd::nbd
