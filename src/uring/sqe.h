// SQE builders in liburing style: each fills exactly one SQE (already
// cleared by Ring::get_sqe) and nothing else. Where liburing 2.3 (Debian
// bookworm) lacks a helper, the fields are filled by hand here.
//
// `Target` names the socket or file: a plain fd, or an index into the
// ring's registered file table (IOSQE_FIXED_FILE).
#pragma once

#include <liburing.h>

#include <cstdint>
#include <cstring>

namespace unbd::uring {

struct Target {
    int fd = -1;
    bool fixed = false;  // fd is a registered-file index

    static Target plain(int fd) { return Target{fd, false}; }
    static Target registered(int index) { return Target{index, true}; }
};

namespace detail {
inline void apply_target(io_uring_sqe* sqe, Target t) {
    sqe->fd = t.fd;
    if (t.fixed) sqe->flags |= IOSQE_FIXED_FILE;
}
}  // namespace detail

// Stream sockets have no file position: -1 means "current position", which
// the kernel ignores for FMODE_STREAM files.
inline constexpr uint64_t kNoOffset = ~uint64_t{0};

inline void prep_send(io_uring_sqe* sqe, Target t, const void* buf, uint32_t len, int msg_flags) {
    io_uring_prep_send(sqe, t.fd, buf, len, msg_flags);
    detail::apply_target(sqe, t);
}

inline void prep_recv(io_uring_sqe* sqe, Target t, void* buf, uint32_t len, int msg_flags) {
    io_uring_prep_recv(sqe, t.fd, buf, len, msg_flags);
    detail::apply_target(sqe, t);
}

// addr: a user address inside the registered buffer, or (kernel-registered
// ublk buffers) an offset into it. The caller decides; see nbd/payload.h.
// file_offset: for regular files (the durability log's memfd).
inline void prep_write_fixed(io_uring_sqe* sqe, Target t, uint64_t addr, uint32_t len, uint16_t buf_index,
                             uint64_t file_offset = kNoOffset) {
    io_uring_prep_rw(IORING_OP_WRITE_FIXED, sqe, t.fd, nullptr, len, file_offset);
    sqe->addr = addr;
    sqe->buf_index = buf_index;
    detail::apply_target(sqe, t);
}

inline void prep_read_fixed(io_uring_sqe* sqe, Target t, uint64_t addr, uint32_t len, uint16_t buf_index) {
    io_uring_prep_rw(IORING_OP_READ_FIXED, sqe, t.fd, nullptr, len, kNoOffset);
    sqe->addr = addr;
    sqe->buf_index = buf_index;
    detail::apply_target(sqe, t);
}

// send/recv from a registered buffer (IORING_RECVSEND_FIXED_BUF). recv
// with a fixed buffer needs a newer kernel than send; probe first.
inline void prep_send_fixed(io_uring_sqe* sqe, Target t, uint64_t addr, uint32_t len, int msg_flags,
                            uint16_t buf_index) {
    io_uring_prep_rw(IORING_OP_SEND, sqe, t.fd, nullptr, len, 0);
    sqe->addr = addr;
    sqe->msg_flags = static_cast<uint32_t>(msg_flags);
    sqe->ioprio = IORING_RECVSEND_FIXED_BUF;
    sqe->buf_index = buf_index;
    detail::apply_target(sqe, t);
}

inline void prep_recv_fixed(io_uring_sqe* sqe, Target t, uint64_t addr, uint32_t len, int msg_flags,
                            uint16_t buf_index) {
    io_uring_prep_rw(IORING_OP_RECV, sqe, t.fd, nullptr, len, 0);
    sqe->addr = addr;
    sqe->msg_flags = static_cast<uint32_t>(msg_flags);
    sqe->ioprio = IORING_RECVSEND_FIXED_BUF;
    sqe->buf_index = buf_index;
    detail::apply_target(sqe, t);
}

// SEND_ZC from a registered buffer. Produces two CQEs: the result (with
// IORING_CQE_F_MORE) and later a notification (IORING_CQE_F_NOTIF) after
// which the buffer may be reused.
inline void prep_send_zc_fixed(io_uring_sqe* sqe, Target t, uint64_t addr, uint32_t len, int msg_flags,
                               uint16_t buf_index) {
    io_uring_prep_rw(IORING_OP_SEND_ZC, sqe, t.fd, nullptr, len, 0);
    sqe->addr = addr;
    sqe->msg_flags = static_cast<uint32_t>(msg_flags);
    sqe->ioprio = IORING_RECVSEND_FIXED_BUF;
    sqe->buf_index = buf_index;
    detail::apply_target(sqe, t);
}

// IORING_OP_URING_CMD on a 128-byte SQE: returns the 80-byte command area
// (sqe->cmd) for the caller to fill. liburing 2.3 has no helper for it.
inline void* prep_uring_cmd(io_uring_sqe* sqe, Target t, uint32_t cmd_op) {
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->cmd_op = cmd_op;
    detail::apply_target(sqe, t);
    return static_cast<void*>(sqe->cmd);
}
inline constexpr std::size_t kUringCmdAreaSize = 80;  // 128-byte SQE minus the 48-byte header

inline void prep_nop(io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }

inline void set_user_data(io_uring_sqe* sqe, uint64_t user_data) { sqe->user_data = user_data; }
inline void set_link(io_uring_sqe* sqe) { sqe->flags |= IOSQE_IO_LINK; }

}  // namespace unbd::uring
