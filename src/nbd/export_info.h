// ExportInfo: what the handshake learnt about one export. Plain data; the
// helpers only read transmission flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "proto/nbd_wire.h"

namespace unbd::nbd {

struct ExportInfo {
    std::string name;                        // canonical name (NBD_INFO_NAME) or the one asked for
    std::optional<std::string> description;  // NBD_INFO_DESCRIPTION
    uint64_t size = 0;
    uint16_t transmission_flags = 0;
    bool block_size_advertised = false;      // NBD_INFO_BLOCK_SIZE was sent
    uint32_t block_size_min = 1;
    uint32_t block_size_preferred = proto::kDefaultPreferredBlockSize;
    uint32_t block_size_max = proto::kDefaultMaxPayload;
    bool structured_replies = false;         // negotiated on this connection

    bool has(uint16_t flag) const { return (transmission_flags & flag) != 0; }
    bool read_only() const { return has(proto::kFlagReadOnly); }
    bool rotational() const { return has(proto::kFlagRotational); }
    bool can_flush() const { return has(proto::kFlagSendFlush); }
    bool can_fua() const { return has(proto::kFlagSendFua); }
    bool can_trim() const { return has(proto::kFlagSendTrim); }
    bool can_write_zeroes() const { return has(proto::kFlagSendWriteZeroes); }
    bool can_fast_zero() const { return has(proto::kFlagSendFastZero); }
    bool can_cache() const { return has(proto::kFlagSendCache); }
    bool can_df() const { return has(proto::kFlagSendDf); }
    bool can_multi_conn() const { return has(proto::kFlagCanMultiConn); }
    // The spec asks for a size that is a multiple of the minimum block size;
    // `unbd info` reports a mismatch, `attach` rounds down.
    bool size_is_block_aligned() const { return size % block_size_min == 0; }
};

// One NBD_REP_SERVER entry of NBD_OPT_LIST.
struct ExportListing {
    std::string name;
    std::string description;  // empty when the server gave none
};

}  // namespace unbd::nbd
