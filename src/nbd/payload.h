// Where a request's payload is and how it crosses the socket.
//
// BufferKind is the one difference between user-registered buffers
// (synthetic frontend, ublk copy mode: sqe->addr is a user address) and
// kernel-registered ublk buffers (UBLK_F_AUTO_BUF_REG: sqe->addr is an
// offset into the request's buffer). nbd::payload_addr (session.h) is the only
// place that looks at it.
#pragma once

#include <cstdint>
#include <string>

#include "uring/probe.h"

namespace unbd::nbd {

enum class BufferKind : uint8_t { UserAddress, KernelOffset };

// How payload bytes move between the socket and the fixed buffer.
enum class PayloadOps : uint8_t {
    UserCopy,        // user buffers only: one SENDMSG (iovecs) per chain, recv MSG_WAITALL;
                     // the socket copies anyway, and it needs the fewest SQEs
    ReadWriteFixed,  // WRITE_FIXED / READ_FIXED on the socket (6.15+, TCP and Unix)
    SendRecvFixed,   // send/recv with IORING_RECVSEND_FIXED_BUF (newer kernels)
    SendZcFixed,     // SEND_ZC + fixed buffer for writes, READ_FIXED for reads (TCP only)
};

const char* name(PayloadOps ops);

// The best fixed-buffer mode the probe allows (kernel-registered buffers
// need one); ReadWriteFixed when nothing better works.
// SEND_ZC is never picked automatically: over loopback it copies anyway and
// costs an extra CQE (see DESIGN.md); ask for it explicitly on real NICs.
PayloadOps choose_payload_ops(const uring::SocketOpSupport& support);

// Throws unless the probe found every op `ops` puts on the socket: a mode
// it lacks fails each send or receive (EINVAL, EOPNOTSUPP). `option` names
// what asked for the mode in the message ("--payload-ops").
void require_payload_ops(const uring::SocketOpSupport& support, PayloadOps ops, const std::string& option);

}  // namespace unbd::nbd
