#include "ublk/zero_copy.h"

#include "common/error.h"
#include "proto/ublk_uapi.h"

namespace unbd::ublk {

namespace P = proto::ublk;

ZeroCopyRequest parse_zero_copy(const std::string& text) {
    if (text == "auto") return ZeroCopyRequest::Auto;
    if (text == "on") return ZeroCopyRequest::On;
    if (text == "off") return ZeroCopyRequest::Off;
    throw usage_error("--zero-copy must be auto, on or off, not '" + text + "'");
}

std::string ZeroCopyChoice::name() const {
    return std::string(buffers == BufferMode::AutoBufReg ? "auto-buf-reg" : "off") + "/" + nbd::name(payload);
}

nbd::PayloadOps parse_payload_ops(const std::string& text) {
    std::string t = text;
    for (char& ch : t) if (ch == '-') ch = '_';
    for (auto ops : {nbd::PayloadOps::UserCopy, nbd::PayloadOps::ReadWriteFixed, nbd::PayloadOps::SendRecvFixed,
                     nbd::PayloadOps::SendZcFixed}) {
        if (t == nbd::name(ops)) return ops;
    }
    throw usage_error("--payload-ops must be user_copy, read_write_fixed, send_recv_fixed or send_zc_fixed, not '" +
                text + "'");
}

ZeroCopyChoice choose_zero_copy(ZeroCopyRequest request, uint64_t features,
                                const uring::SocketOpSupport& ops, std::optional<nbd::PayloadOps> payload) {
    if (payload) {
        nbd::require_payload_ops(ops, *payload, "--payload-ops");
        if (*payload == nbd::PayloadOps::UserCopy && request != ZeroCopyRequest::Off) {
            throw Error("--payload-ops user_copy needs our own buffers: use it with --zero-copy=off");
        }
    }

    // Copy mode moves payloads with plain SENDMSG/recv from our buffers
    // (the engine's UserCopy; any 6.x kernel): the socket copies anyway, and
    // it takes the fewest SQEs. Same TCG VM run (7.3, Unix socket, 2 queues):
    // 4K randread 1954 IOPS vs 1401 with READ_FIXED; 1M read 30 vs 26 MiB/s.
    ZeroCopyChoice copy;
    copy.payload = payload.value_or(nbd::PayloadOps::UserCopy);
    if (request == ZeroCopyRequest::Off) {
        copy.reason = "copy mode requested (--zero-copy=off)";
        return copy;
    }

    // Kernel-registered buffers need a fixed-buffer op on the socket. Best
    // first (the engine's choose_payload_ops): send/recv + FIXED_BUF where
    // the probe finds it (Linux 7.2+; a recv with MSG_WAITALL takes a whole
    // READ payload), else WRITE_FIXED/READ_FIXED (6.15+). SEND_ZC is never
    // the default: over loopback it copies anyway and adds a notification
    // CQE. Same-boot A/B in the TCG VM (7.3, TCP, 2 queues): the two fixed
    // modes are equal within noise; both pass fio verify.
    const bool any_fixed = (ops.read_fixed && ops.write_fixed) || (ops.send_fixed && ops.recv_fixed);
    const bool auto_reg = (features & P::UBLK_F_AUTO_BUF_REG) != 0;
    if (auto_reg && any_fixed) {
        ZeroCopyChoice c;
        c.buffers = BufferMode::AutoBufReg;
        c.payload = payload.value_or(nbd::choose_payload_ops(ops));
        c.reason = "kernel has UBLK_F_AUTO_BUF_REG";
        return c;
    }
    const std::string missing = !auto_reg ? "this kernel's ublk lacks UBLK_F_AUTO_BUF_REG (Linux 6.16 or newer)"
                                          : "io_uring cannot use fixed buffers on sockets here (Linux 6.15 or newer)";
    if (request == ZeroCopyRequest::On) {
        throw Error("--zero-copy=on: " + missing + "; use --zero-copy=auto or off");
    }
    copy.reason = missing + ": copy mode";
    return copy;
}

}  // namespace unbd::ublk
