// Which fixed-buffer payload operations this kernel accepts on a socket.
// Measured on 6.18: READ_FIXED/WRITE_FIXED work on TCP and Unix sockets;
// send/recv with IORING_RECVSEND_FIXED_BUF are refused (EINVAL, newer
// kernels only); SEND_ZC from a fixed buffer works on TCP, not on Unix.
// So we ask the kernel once, on one throwaway socket pair and ring.
#pragma once

#include <string>

namespace unbd::uring {

struct SocketOpSupport {
    bool write_fixed = false;
    bool read_fixed = false;
    bool send_fixed = false;     // IORING_OP_SEND + IORING_RECVSEND_FIXED_BUF
    bool recv_fixed = false;     // IORING_OP_RECV + IORING_RECVSEND_FIXED_BUF
    bool send_zc_fixed = false;  // IORING_OP_SEND_ZC + IORING_RECVSEND_FIXED_BUF

    std::string describe() const;  // "write_fixed read_fixed send_zc_fixed"
};

// family: AF_UNIX (socketpair) or AF_INET (loopback connection).
// Never throws; an op that cannot be tested counts as unsupported.
// SEND_ZC is tried only when asked (with_send_zc): it is never chosen
// unasked, and its probe waits for the zero-copy notification, which on a
// 7.3 guest came only after a 1 s timeout -- most of `unbd attach`'s time.
SocketOpSupport probe_socket_ops(int family, bool with_send_zc = false);

}  // namespace unbd::uring
