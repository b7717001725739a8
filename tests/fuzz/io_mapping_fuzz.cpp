// Fuzzes the ublk descriptor -> NBD request mapping (src/ublk/io_mapping.h).
//
// Input: a ublksrv_io_desc (24 bytes, host order, as the kernel maps it),
// one byte of CommandSupport bits (flush, fua, trim, write_zeroes, write),
// two bytes of tag, then a session result (4 bytes) for commit_result.
// A descriptor is refused with a negative errno, or mapped to a request
// that covers exactly its byte range, uses only commands the device
// supports, and commits a byte count ublk can take.
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ublk/io_mapping.h"

using namespace unbd;
namespace P = unbd::proto::ublk;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    P::ublksrv_io_desc iod{};
    ublk::CommandSupport cmds;
    uint16_t tag = 0;
    int32_t session_result = 0;
    if (size < sizeof iod + 1 + sizeof tag + sizeof session_result) return 0;
    std::memcpy(&iod, data, sizeof iod);
    const uint8_t bits = data[sizeof iod];
    cmds.flush = bits & 1;
    cmds.fua = bits & 2;
    cmds.trim = bits & 4;
    cmds.write_zeroes = bits & 8;
    cmds.write = bits & 16;
    std::memcpy(&tag, data + sizeof iod + 1, sizeof tag);
    std::memcpy(&session_result, data + sizeof iod + 1 + sizeof tag, sizeof session_result);

    const ublk::Mapped m = ublk::to_block_request(iod, tag, cmds);
    if (const int* err = std::get_if<int>(&m)) {
        check(*err < 0);
        return 0;
    }
    const nbd::BlockRequest& r = std::get<nbd::BlockRequest>(m);
    check(r.tag == tag);
    const P::IoOp op = P::io_op(iod);
    switch (r.op) {
        case nbd::BlockOp::Read: check(op == P::IoOp::Read); break;
        case nbd::BlockOp::Write: check(op == P::IoOp::Write && cmds.write); break;
        case nbd::BlockOp::Flush: check(op == P::IoOp::Flush && cmds.flush && r.length == 0); break;
        case nbd::BlockOp::Trim: check(op == P::IoOp::Discard && cmds.trim); break;
        case nbd::BlockOp::WriteZeroes: check(op == P::IoOp::WriteZeroes && cmds.write_zeroes); break;
    }
    if (r.fua) check(cmds.fua && (P::io_flags(iod) & P::UBLK_IO_F_FUA) != 0);
    if (r.no_hole) check(r.op == nbd::BlockOp::WriteZeroes);
    if (r.op != nbd::BlockOp::Flush) {
        // Exactly the descriptor's bytes: nothing cut off by an overflow.
        check(r.offset % 512 == 0 && r.offset / 512 == iod.start_sector);
        check(r.length % 512 == 0 && r.length / 512 == iod.nr_sectors);
    }
    const int committed = ublk::commit_result(r, session_result);
    if (session_result < 0)
        check(committed == session_result);
    else if (r.op == nbd::BlockOp::Read || r.op == nbd::BlockOp::Write)
        check(committed >= 0 && static_cast<uint32_t>(committed) == r.length);
    else
        check(committed == 0);
    return 0;
}
