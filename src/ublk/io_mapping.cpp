#include "ublk/io_mapping.h"

#include <cerrno>
#include <climits>

namespace unbd::ublk {

namespace P = proto::ublk;

namespace {

// The kernel bounds requests by the device's limits, so these never come;
// but a byte range that the request's fields cannot hold is refused, never
// truncated (found by tests/fuzz/io_mapping_fuzz.cpp). READ and WRITE also
// commit their byte count as an int.
bool range_fits(const P::ublksrv_io_desc& iod, bool commits_bytes) {
    const uint64_t max_sectors = (commits_bytes ? uint64_t{INT_MAX} : uint64_t{UINT32_MAX}) >> 9;
    return iod.start_sector <= (UINT64_MAX >> 9) && iod.nr_sectors <= max_sectors;
}

}  // namespace

Mapped to_block_request(const P::ublksrv_io_desc& iod, uint16_t tag, const CommandSupport& cmds) {
    const P::IoOp op = P::io_op(iod);
    if (op != P::IoOp::Flush && !range_fits(iod, op == P::IoOp::Read || op == P::IoOp::Write)) return -EINVAL;
    nbd::BlockRequest r;
    r.tag = tag;
    r.offset = iod.start_sector << 9;
    r.length = iod.nr_sectors << 9;
    const uint32_t flags = P::io_flags(iod);
    switch (op) {
        case P::IoOp::Read:
            r.op = nbd::BlockOp::Read;
            return r;
        case P::IoOp::Write:
            if (!cmds.write) return -EROFS;
            r.op = nbd::BlockOp::Write;
            r.fua = cmds.fua && (flags & P::UBLK_IO_F_FUA) != 0;
            return r;
        case P::IoOp::Flush:
            if (!cmds.flush) return -EOPNOTSUPP;
            r.op = nbd::BlockOp::Flush;
            r.offset = 0;
            r.length = 0;
            return r;
        case P::IoOp::Discard:
            if (!cmds.trim) return -EOPNOTSUPP;
            r.op = nbd::BlockOp::Trim;
            r.fua = cmds.fua && (flags & P::UBLK_IO_F_FUA) != 0;
            return r;
        case P::IoOp::WriteZeroes:
            if (!cmds.write_zeroes) return -EOPNOTSUPP;
            r.op = nbd::BlockOp::WriteZeroes;
            r.fua = cmds.fua && (flags & P::UBLK_IO_F_FUA) != 0;
            r.no_hole = (flags & P::UBLK_IO_F_NOUNMAP) != 0;
            return r;
        default:
            return -EOPNOTSUPP;
    }
}

int commit_result(const nbd::BlockRequest& request, int session_result) {
    if (session_result < 0) return session_result;
    if (request.op == nbd::BlockOp::Read || request.op == nbd::BlockOp::Write) {
        return static_cast<int>(request.length);
    }
    return 0;
}

}  // namespace unbd::ublk
