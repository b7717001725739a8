// One ublk I/O descriptor -> one NBD BlockRequest. Pure, unit-tested.
//
//   READ -> Read, WRITE -> Write (FUA flag kept when the device has FUA),
//   FLUSH -> Flush, DISCARD -> Trim, WRITE_ZEROES -> WriteZeroes
//   (NOUNMAP -> no_hole). Anything the server did not advertise, or any
//   other op (zones, WRITE_SAME), is refused with an errno that the queue
//   commits back at once: the server never sees it. A byte range the
//   request cannot hold (offset past 2^64, length past what COMMIT can
//   report) is refused with EINVAL.
#pragma once

#include <cstdint>
#include <variant>

#include "nbd/block_request.h"
#include "proto/ublk_uapi.h"
#include "ublk/device_params.h"

namespace unbd::ublk {

// A request, or a negative errno to complete the I/O with.
using Mapped = std::variant<nbd::BlockRequest, int>;

Mapped to_block_request(const proto::ublk::ublksrv_io_desc& iod, uint16_t tag, const CommandSupport& cmds);

// The result to COMMIT for a finished request: ublk wants the byte count
// for READ/WRITE (it copies or unmaps that many bytes), 0 for the rest.
int commit_result(const nbd::BlockRequest& request, int session_result);

}  // namespace unbd::ublk
