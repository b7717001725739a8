// BlockRequest: what a block-layer frontend (ublk queue, synthetic
// frontend) asks the NBD session to do. Its payload lives in the io_uring
// registered buffer whose index is `tag`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace unbd::nbd {

enum class BlockOp : uint8_t { Read, Write, Flush, Trim, WriteZeroes };

struct BlockRequest {
    uint16_t tag = 0;
    BlockOp op = BlockOp::Read;
    uint64_t offset = 0;
    uint32_t length = 0;
    bool fua = false;
    bool no_hole = false;  // WRITE_ZEROES only: the server must not punch a hole
    // WRITE only, optional: the same bytes in memory of our own (the
    // durability log's copy), valid until the request completes. The
    // session may send a chain whose payloads all have one as a single
    // SENDMSG instead of a fixed-buffer send per payload.
    const std::byte* data_copy = nullptr;
};

const char* name(BlockOp op);

}  // namespace unbd::nbd
