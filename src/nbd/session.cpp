// Session: request mapping (BlockRequest -> NBD commands), completion
// accounting, the CQE dispatcher and failure handling. The send chain is in
// send_chain.cpp, the reply reader in reply_reader.cpp.
#include "nbd/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "common/error.h"
#include "nbd/ktls.h"
#include "uring/user_data.h"

namespace unbd::nbd {

const char* name(BlockOp op) {
    switch (op) {
        case BlockOp::Read: return "READ";
        case BlockOp::Write: return "WRITE";
        case BlockOp::Flush: return "FLUSH";
        case BlockOp::Trim: return "TRIM";
        case BlockOp::WriteZeroes: return "WRITE_ZEROES";
    }
    return "?";
}

const char* name(PayloadOps ops) {
    switch (ops) {
        case PayloadOps::UserCopy: return "user_copy";
        case PayloadOps::ReadWriteFixed: return "read_write_fixed";
        case PayloadOps::SendRecvFixed: return "send_recv_fixed";
        case PayloadOps::SendZcFixed: return "send_zc_fixed";
    }
    return "?";
}

PayloadOps choose_payload_ops(const uring::SocketOpSupport& s) {
    if (s.send_fixed && s.recv_fixed) return PayloadOps::SendRecvFixed;
    return PayloadOps::ReadWriteFixed;
}

namespace {
// A switch, so that a new mode cannot compile without saying what it needs.
bool probe_found(const uring::SocketOpSupport& s, PayloadOps ops) {
    switch (ops) {
        case PayloadOps::UserCopy: return true;
        case PayloadOps::ReadWriteFixed: return s.read_fixed && s.write_fixed;
        case PayloadOps::SendRecvFixed: return s.send_fixed && s.recv_fixed;
        case PayloadOps::SendZcFixed: return s.send_zc_fixed && s.read_fixed;
    }
    return false;
}
}  // namespace

void require_payload_ops(const uring::SocketOpSupport& s, PayloadOps ops, const std::string& option) {
    if (!probe_found(s, ops))
        throw Error(option + " " + name(ops) + ": this kernel cannot do it on this transport (probe found: " +
                    s.describe() + ")");
}

Session::Session(uring::Ring& ring, uring::Target socket, int raw_fd, const ExportInfo& info,
                 SessionOptions options)
    : ring_(ring), socket_(socket), raw_fd_(raw_fd), info_(info), opt_(std::move(options)) {
    if (opt_.queue_depth == 0) throw Error("NBD session: queue depth must be at least 1");
    if (opt_.buffer_kind == BufferKind::UserAddress && !opt_.buffer_base)
        throw Error("NBD session: user buffers need a buffer_base function");
    if (!opt_.on_complete) throw Error("NBD session: on_complete is required");
    if (opt_.payload_ops == PayloadOps::UserCopy && opt_.buffer_kind != BufferKind::UserAddress)
        throw Error("NBD session: kernel-registered buffers need a fixed-buffer payload mode");
    // kTLS (nbd/ktls.h): its sendmsg refuses MSG_WAITALL, which the linked
    // fixed-buffer chains rely on: they go stepwise there. SEND_ZC gains
    // nothing on it (kTLS encrypts into buffers of its own).
    kernel_tls_ = socket_uses_ktls(raw_fd_);
    if (kernel_tls_ && opt_.payload_ops == PayloadOps::SendZcFixed)
        throw Error("NBD session: payload mode send_zc_fixed is not supported on a kernel TLS socket");
    stepwise_ = opt_.payload_ops != PayloadOps::UserCopy && (kernel_tls_ || opt_.stepwise_sends);
    chunk_ = split_size(info_, opt_.max_request_bytes);
    // UserCopy sends a whole chain as one SQE; its cap is the iovec limit.
    opt_.max_chain_sqes = opt_.payload_ops == PayloadOps::UserCopy ? 1024u  // UIO_MAXIOV
                                                                   : std::clamp(opt_.max_chain_sqes, 2u, ring_.sq_entries());

    const uint32_t max_parts = (opt_.max_request_bytes + chunk_ - 1) / chunk_ + 1;
    if (max_parts > 0xffff) throw Error("NBD session: the server's maximum payload is too small");
    slots_.resize(opt_.queue_depth);
    for (auto& s : slots_) s.parts.reserve(max_parts);
    send_fifo_.resize(opt_.queue_depth);
    ready_.reserve(opt_.queue_depth);
    chain_.reserve(opt_.max_chain_sqes);
    iov_.reserve(opt_.max_chain_sqes);  // a chain can go as one SENDMSG in every mode (data_copy)
    if (opt_.fill_request && opt_.buffer_kind != BufferKind::KernelOffset)
        throw Error("NBD session: fill_request is for kernel-registered buffers");
    if (opt_.payload_ops == PayloadOps::UserCopy || opt_.fill_request) stage_.resize(64 * 1024);
    header_buf_.resize(std::size_t{opt_.queue_depth} * max_parts * proto::kRequestSize);
}

Session::~Session() = default;

uint64_t Session::payload_addr(uint16_t tag, uint32_t offset) const { return nbd::payload_addr(opt_, tag, offset); }

uint64_t Session::user_data(Kind kind, uint64_t value) const {
    return uring::UserData{uring::Owner::NbdSession, opt_.instance, kind, value}.encode();
}

// <0: refuse with that errno; 1: done without I/O; 0: send it.
int Session::validate(const BlockRequest& r) const {
    const bool writes = r.op != BlockOp::Read && r.op != BlockOp::Flush;
    if (writes && info_.read_only()) return -EROFS;
    switch (r.op) {
        case BlockOp::Flush:
            // No SEND_FLUSH means no write cache to flush, as the block layer sees it.
            return info_.can_flush() ? 0 : 1;
        case BlockOp::Trim:
            if (!info_.can_trim()) return -EOPNOTSUPP;
            break;
        case BlockOp::WriteZeroes:
            if (!info_.can_write_zeroes()) return -EOPNOTSUPP;
            break;
        case BlockOp::Read:
        case BlockOp::Write:
            if (r.length > opt_.max_request_bytes) return -EINVAL;
            break;
    }
    if (r.length == 0) return -EINVAL;
    const uint32_t min = std::max<uint32_t>(1, info_.block_size_min);
    if (r.offset % min != 0 || r.length % min != 0) return -EINVAL;
    const uint64_t size = opt_.export_size ? opt_.export_size->load(std::memory_order_relaxed) : info_.size;
    if (r.offset > size || r.length > size - r.offset) return -EINVAL;
    return 0;
}

void Session::submit(const BlockRequest& r) {
    if (r.tag >= slots_.size())
        throw Error("NBD session: tag " + std::to_string(r.tag) + " is beyond the queue depth");
    Slot& s = slots_[r.tag];
    if (s.active) throw Error("NBD session: tag " + std::to_string(r.tag) + " submitted twice");
    if (disc_requested_) return complete_later(r.tag, -ESHUTDOWN);
    const int v = validate(r);
    if (v != 0) return complete_later(r.tag, v < 0 ? v : 0);
    s.req = r;
    s.active = true;
    ++s.generation;
    ++active_count_;
    plan_request(s, info_, chunk_);
    enqueue(r.tag);
}

void Session::enqueue(uint16_t tag) {
    Slot& s = slots_[tag];
    if (s.queued) return;
    s.queued = true;
    send_fifo_[(fifo_head_ + fifo_size_) % send_fifo_.size()] = tag;
    ++fifo_size_;
}

void Session::complete_later(uint16_t tag, int result) { ready_.emplace_back(tag, result); }

void Session::flush_ready() {
    // on_complete may submit again, which may append to ready_.
    for (std::size_t i = 0; i < ready_.size(); ++i) {
        auto [tag, result] = ready_[i];
        opt_.on_complete(tag, result);
    }
    ready_.clear();
}

// A request is finished when every part has its reply and no SQE still
// references its buffer. FUA emulation adds the FLUSH only then, because a
// FLUSH covers only writes already replied to.
void Session::maybe_complete(uint16_t tag) {
    Slot& s = slots_[tag];
    if (!s.active || s.parts_pending != 0 || s.payload_sends != 0 || failed_) return;
    if (s.flush_after && s.result == 0) {
        s.flush_after = false;
        s.end_part = s.data_parts + 1;
        s.parts_pending = 1;
        enqueue(tag);
        return;
    }
    int result = s.result;
    if (result == 0) result = s.req.op == BlockOp::Flush ? 0 : static_cast<int>(s.req.length);
    s.active = false;
    --active_count_;
    opt_.on_complete(tag, result);
}

void Session::prepare_sqes() {
    flush_ready();
    if (failed_) return;
    if (!chain_in_flight_) {
        if (chain_broken_)
            start_chain();
        else if (fifo_size_ > 0)
            build_chain();
        else if (disc_requested_ && !disc_queued_ && active_count_ == 0)
            queue_disc();
    }
    if (!failed_ && !reader_armed_ && (replies_expected_ > 0 || reader_ == ReaderState::Payload)) arm_reader();
}

bool Session::handle_cqe(const io_uring_cqe& cqe) {
    const auto ud = uring::UserData::decode(cqe.user_data);
    if (ud.owner != uring::Owner::NbdSession || ud.instance != opt_.instance) return false;
    switch (ud.kind) {
        case kSend: on_send_cqe(ud.value, cqe); break;
        case kRecvHeader: on_header_cqe(cqe.res); break;
        case kRecvPayload: on_payload_cqe(cqe.res); break;
        default: break;
    }
    return true;
}

// Errors that name our own SQE, not the peer: the kernel refused the op or
// its arguments (an op this kernel lacks on this socket, a bad buffer).
void Session::fail_io(const std::string& what, int res) {
    if (failed_) return;
    fail(errno_text(what, res));
    const int err = -res;
    refused_by_kernel_ = err == EINVAL || err == EOPNOTSUPP || err == EFAULT || err == EBADF || err == ENOTSOCK;
}

void Session::fail(const std::string& reason) {
    if (failed_) return;
    failed_ = true;
    failure_reason_ = reason;
    // Wakes every pending send and recv of this socket, so idle() comes.
    ::shutdown(raw_fd_, SHUT_RDWR);
}

std::vector<BlockRequest> Session::take_unfinished() {
    std::vector<BlockRequest> out;
    if (!idle()) return out;
    for (auto& s : slots_) {
        if (!s.active) continue;
        out.push_back(s.req);
        s.active = false;
        s.queued = false;
    }
    active_count_ = 0;
    fifo_size_ = 0;
    flush_ready();
    return out;
}

void Session::fail_unfinished(int error) {
    for (const BlockRequest& r : take_unfinished()) opt_.on_complete(r.tag, error);
}

void Session::disconnect() { disc_requested_ = true; }

}  // namespace unbd::nbd
