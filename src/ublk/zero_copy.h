// Zero-copy mode selection: `--zero-copy=auto|on|off`.
//
// Buffer modes, best first:
//   auto-buf-reg  UBLK_F_AUTO_BUF_REG (6.16): the kernel puts each request's
//                 pages at io_uring buffer index == tag on FETCH/COMMIT;
//                 payload ops address them by offset. No copy at all.
//   copy          our own per-tag buffers registered at index == tag; ublk
//                 copies request data in and out of them (any 6.x kernel).
// (Explicit UBLK_U_IO_REGISTER_IO_BUF around each payload op, 6.15, would
// sit between the two; it is not implemented: on 6.16+ auto-buf-reg is
// strictly better, and 6.15 falls back to copy.)
//
// The payload op on the socket (nbd::PayloadOps): copy mode uses plain
// SENDMSG/recv from our buffers (UserCopy); auto-buf-reg needs a
// fixed-buffer op, chosen by probing the kernel with a throwaway socket
// pair of the export's transport (READ_FIXED/WRITE_FIXED by default).
// --payload-ops overrides either, within what the probe found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "nbd/payload.h"
#include "uring/probe.h"

namespace unbd::ublk {

enum class ZeroCopyRequest { Auto, On, Off };

// "auto", "on", "off" -> ZeroCopyRequest; throws unbd::Error otherwise.
ZeroCopyRequest parse_zero_copy(const std::string& text);

enum class BufferMode { Copy, AutoBufReg };

struct ZeroCopyChoice {
    BufferMode buffers = BufferMode::Copy;
    nbd::PayloadOps payload = nbd::PayloadOps::ReadWriteFixed;
    std::string reason;  // why this mode (for logs and `unbd list`)

    bool zero_copy() const { return buffers == BufferMode::AutoBufReg; }
    // "auto-buf-reg/read-write-fixed", "off/read-write-fixed" -- what
    // `unbd list` and the state file show.
    std::string name() const;
};

// Pure: kernel ublk features + socket op probe -> the mode. `On` throws an
// Error naming what the kernel lacks instead of falling back.
// `payload` forces the socket payload op (--payload-ops); it must be one
// the probe found working.
ZeroCopyChoice choose_zero_copy(ZeroCopyRequest request, uint64_t ublk_features,
                                const uring::SocketOpSupport& socket_ops,
                                std::optional<nbd::PayloadOps> payload = std::nullopt);

// "read_write_fixed", "send_recv_fixed", "send_zc_fixed" (or with dashes).
nbd::PayloadOps parse_payload_ops(const std::string& text);

}  // namespace unbd::ublk
