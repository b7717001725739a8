// DeviceParams: how one NBD export becomes ublk device parameters
// (DESIGN.md "Mapping the export onto the device"). Pure: no syscalls, so
// the mapping is unit-tested on hosts without ublk.
//
// Rules: size rounded down to the logical block; logical block =
// max(512, server minimum); io_opt from the preferred size; max request =
// min(server maximum, per-tag buffer); read-only, rotational from the flags;
// volatile cache only with SEND_FLUSH, FUA only with FLUSH+FUA; discard and
// write-zeroes only when advertised. Never a command the server lacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nbd/export_info.h"
#include "proto/ublk_uapi.h"

namespace unbd::ublk {

struct MappingOptions {
    bool force_read_only = false;          // --read-only
    uint32_t max_io_buf_bytes = 512 << 10; // per-tag buffer: the largest request
};

struct DeviceParams {
    proto::ublk::ublk_params params{};
    uint64_t size_bytes = 0;          // after rounding down
    uint32_t logical_block_size = 512;
    uint32_t max_request_bytes = 0;   // max_sectors << 9
    bool read_only = false;
    std::vector<std::string> warnings; // for stderr, e.g. "size rounded down"
};

// Throws unbd::Error when the export cannot be a block device (block size
// larger than a page, not a power of two, size smaller than one block).
DeviceParams map_export(const nbd::ExportInfo& info, const MappingOptions& options);

// Recovery: the device already exists with `device` parameters (GET_PARAMS);
// the export, mapped again, gave `now`. "" when a new daemon may serve the
// device as it is, else one line saying what no longer fits (the export
// shrank, turned read-only, lost FLUSH/FUA/TRIM/WRITE_ZEROES, another block
// size). A grown export is fine: the device keeps its size. Pure.
std::string recovery_mismatch(const proto::ublk::ublk_params& device, const DeviceParams& now);

// Which NBD commands the device may send, derived from the same flags, so
// the queue refuses anything the device was told not to issue.
struct CommandSupport {
    bool flush = false;
    bool fua = false;
    bool trim = false;
    bool write_zeroes = false;
    bool write = true;
};
CommandSupport command_support(const nbd::ExportInfo& info, bool force_read_only);

}  // namespace unbd::ublk
