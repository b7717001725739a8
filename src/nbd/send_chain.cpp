// The send chain: at most one IOSQE_IO_LINK chain in flight per socket, so
// the bytes of two requests never interleave. Consecutive request headers
// share one send; a WRITE's payload follows its header as a fixed-buffer
// op -- or, when every payload of the chain is in our own memory (copy
// mode, or the durability log's copy of a small write), the whole chain is
// one SENDMSG. A short send ends the chain early (the kernel cancels the rest with
// -ECANCELED); the unsent remainder becomes the next chain, in order.
// Stepwise (a kTLS socket refuses MSG_WAITALL, so a link cannot be trusted
// to stop at a short send): only the first unsent segment goes, unlinked;
// its completion starts the next, and a short one is resent from where it
// stopped, so the stream never has a gap.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <span>

#include "common/error.h"
#include "nbd/cookie.h"
#include "nbd/session.h"

namespace unbd::nbd {

namespace {
// user_data value of a send SQE: the segment index, and the tag so that a
// SEND_ZC notification (which may come after the chain is gone) finds it.
constexpr uint64_t send_value(uint32_t index, uint16_t tag) { return uint64_t{index} | (uint64_t{tag} << 20); }
constexpr uint32_t value_index(uint64_t v) { return static_cast<uint32_t>(v & 0xfffff); }
constexpr uint16_t value_tag(uint64_t v) { return static_cast<uint16_t>(v >> 20); }
constexpr uint32_t kWholeChain = 0xfffff;  // UserCopy: one SENDMSG carries every segment
}  // namespace

void Session::build_chain() {
    chain_.clear();
    header_used_ = 0;
    const std::size_t header_cap = header_buf_.size() / proto::kRequestSize;
    bool full = false;
    while (fifo_size_ > 0 && !full) {
        const uint16_t tag = send_fifo_[fifo_head_];
        Slot& s = slots_[tag];
        while (s.next_part < s.end_part) {
            const uint16_t part = s.next_part;
            const bool is_flush = part >= s.data_parts;
            const bool has_payload = !is_flush && s.cmd == proto::Cmd::Write;
            const bool new_header_seg = chain_.empty() || chain_.back().kind != Segment::Kind::Headers;
            const unsigned need = (new_header_seg ? 1u : 0u) + (has_payload ? 1u : 0u);
            if (chain_.size() + need > opt_.max_chain_sqes || header_used_ + 1 > header_cap) {
                full = true;  // the tag stays at the head of the queue
                break;
            }

            uint32_t buf_off = 0;
            const uint32_t len = part_length(s, part, &buf_off);
            proto::Request req;
            req.type = is_flush ? proto::Cmd::Flush : s.cmd;
            req.flags = is_flush ? 0 : s.cmd_flags;
            req.cookie = Cookie{tag, part, s.generation}.encode();
            req.offset = is_flush ? 0 : s.req.offset + buf_off;
            req.length = len;
            const auto off = header_used_ * proto::kRequestSize;
            proto::encode_request(req, std::span<std::byte, proto::kRequestSize>(header_buf_.data() + off,
                                                                                 proto::kRequestSize));
            ++header_used_;
            if (new_header_seg)
                chain_.push_back(Segment{Segment::Kind::Headers, tag, static_cast<uint32_t>(off),
                                         static_cast<uint32_t>(proto::kRequestSize)});
            else
                chain_.back().length += proto::kRequestSize;
            if (has_payload) chain_.push_back(Segment{Segment::Kind::Payload, tag, buf_off, len});
            s.parts[part] = PartState::Sent;
            ++replies_expected_;
            ++stats_.commands;
            ++s.next_part;
        }
        if (full) break;
        s.queued = false;
        fifo_head_ = (fifo_head_ + 1) % send_fifo_.size();
        --fifo_size_;
    }
    chain_resume_ = 0;
    if (!chain_.empty()) start_chain();
}

void Session::queue_disc() {
    chain_.clear();
    proto::Request req;
    req.type = proto::Cmd::Disc;
    proto::encode_request(req, std::span<std::byte, proto::kRequestSize>(header_buf_.data(), proto::kRequestSize));
    header_used_ = 1;
    chain_.push_back(Segment{Segment::Kind::Headers, 0, 0, static_cast<uint32_t>(proto::kRequestSize)});
    chain_resume_ = 0;
    disc_queued_ = true;
    start_chain();
}

void Session::start_chain() {
    // After a break only the unsent tail goes again; drop what went out.
    if (chain_resume_ > 0) chain_.erase(chain_.begin(), chain_.begin() + static_cast<long>(chain_resume_));
    chain_resume_ = 0;
    chain_broken_ = false;
    const unsigned segments = static_cast<unsigned>(chain_.size());
    if (segments == 0) return;
    if (opt_.payload_ops == PayloadOps::UserCopy || payloads_in_our_memory()) return start_sendmsg();
    const unsigned n = stepwise_ ? 1u : segments;
    // MSG_WAITALL: without it a short send completes "successfully" and a
    // link goes on, interleaving the stream; with it a short send fails the
    // link (kernel net.c min_ret) and we resend. Stepwise needs no link.
    const int waitall = stepwise_ ? 0 : MSG_WAITALL;
    if (!ring_.reserve(n)) return fail("NBD session: cannot reserve " + std::to_string(n) + " SQEs for a send chain");
    for (unsigned i = 0; i < n; ++i) {
        Segment& seg = chain_[i];
        io_uring_sqe* sqe = ring_.get_sqe();
        const uint32_t left = seg.length - seg.done;
        if (seg.kind == Segment::Kind::Headers) {
            // MSG_MORE lets TCP (and kTLS: one record) put a header and its
            // payload together.
            const int flags = MSG_NOSIGNAL | waitall | (i + 1 == segments ? 0 : MSG_MORE);
            uring::prep_send(sqe, socket_, header_buf_.data() + seg.offset + seg.done, left, flags);
        } else {
            const uint64_t addr = payload_addr(seg.tag, seg.offset + seg.done);
            switch (opt_.payload_ops) {
                case PayloadOps::UserCopy:  // handled by start_sendmsg
                case PayloadOps::ReadWriteFixed: uring::prep_write_fixed(sqe, socket_, addr, left, seg.tag); break;
                case PayloadOps::SendRecvFixed:
                    uring::prep_send_fixed(sqe, socket_, addr, left, MSG_NOSIGNAL | waitall, seg.tag);
                    break;
                case PayloadOps::SendZcFixed:
                    uring::prep_send_zc_fixed(sqe, socket_, addr, left, MSG_NOSIGNAL | waitall, seg.tag);
                    break;
            }
            ++slots_[seg.tag].payload_sends;
        }
        if (i + 1 < n) uring::set_link(sqe);
        uring::set_user_data(sqe, user_data(kSend, send_value(i, seg.tag)));
    }
    sqes_in_kernel_ += n;
    stats_.send_sqes += n;
    ++stats_.chains;
    chain_cqes_pending_ = n;
    chain_in_flight_ = true;
}

// Every payload of the chain has a copy in our memory (the durability
// log's, BlockRequest::data_copy): the chain can go as one SENDMSG. TCP
// copies into its buffers from a fixed buffer as from user memory, so this
// costs no copy and saves an SQE per payload -- and on kTLS, where the
// fixed-buffer sends go stepwise, a trip through the ring per segment.
bool Session::payloads_in_our_memory() const {
    bool any = false;
    for (const Segment& seg : chain_) {
        if (seg.kind != Segment::Kind::Payload) continue;
        if (slots_[seg.tag].req.data_copy == nullptr) return false;
        any = true;
    }
    return any;
}

void* Session::segment_base(const Segment& seg) const {
    const uint32_t at = seg.offset + seg.done;
    if (seg.kind == Segment::Kind::Headers) return const_cast<std::byte*>(header_buf_.data() + at);
    if (const std::byte* copy = slots_[seg.tag].req.data_copy) return const_cast<std::byte*>(copy + at);
    return reinterpret_cast<void*>(static_cast<uintptr_t>(payload_addr(seg.tag, at)));  // UserCopy
}

void Session::start_sendmsg() {
    iov_.clear();
    for (Segment& seg : chain_) {
        iov_.push_back(iovec{segment_base(seg), seg.length - seg.done});
        if (seg.kind == Segment::Kind::Payload) ++slots_[seg.tag].payload_sends;
    }
    msg_ = msghdr{};
    msg_.msg_iov = iov_.data();
    msg_.msg_iovlen = iov_.size();
    io_uring_sqe* sqe = ring_.get_sqe();
    // MSG_WAITALL only to spare a resend: a short send is handled either way
    // (on_send_cqe). kTLS refuses the flag (nbd/ktls.h).
    io_uring_prep_sendmsg(sqe, socket_.fd, &msg_, MSG_NOSIGNAL | (kernel_tls_ ? 0 : MSG_WAITALL));
    if (socket_.fixed) sqe->flags |= IOSQE_FIXED_FILE;
    uring::set_user_data(sqe, user_data(kSend, send_value(kWholeChain, 0)));
    ++sqes_in_kernel_;
    ++stats_.send_sqes;
    ++stats_.chains;
    chain_cqes_pending_ = 1;
    chain_in_flight_ = true;
}

void Session::on_send_cqe(uint64_t value, const io_uring_cqe& cqe) {
    if (value_index(value) == kWholeChain) {
        --sqes_in_kernel_;
        chain_cqes_pending_ = 0;
        int res = cqe.res;
        if (res == -EINTR || res == -EAGAIN) res = 0;
        else if (res == -EPIPE || res == -ECONNRESET)
            fail("NBD session: the server closed the connection while a request was being sent");
        else if (res < 0)
            fail_io("NBD session: sending to the server failed", res);
        uint32_t left = res > 0 ? static_cast<uint32_t>(res) : 0;
        for (Segment& seg : chain_) {
            const uint32_t n = std::min(left, seg.length - seg.done);
            seg.done += n;
            left -= n;
            if (seg.kind == Segment::Kind::Payload) --slots_[seg.tag].payload_sends;
        }
        finish_chain();
        for (const Segment& seg : chain_)
            if (seg.kind == Segment::Kind::Payload) maybe_complete(seg.tag);
        return;
    }
    if (cqe.flags & IORING_CQE_F_NOTIF) {  // SEND_ZC: the buffer is free now
        const uint16_t tag = value_tag(value);
        --sqes_in_kernel_;
        --slots_[tag].payload_sends;
        maybe_complete(tag);
        return;
    }
    const bool notif_follows = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (!notif_follows) --sqes_in_kernel_;
    const uint32_t index = value_index(value);
    if (index >= chain_.size() || chain_cqes_pending_ == 0) return;  // cannot happen; be safe
    Segment& seg = chain_[index];
    const bool payload = seg.kind == Segment::Kind::Payload;
    const uint16_t tag = seg.tag;
    --chain_cqes_pending_;
    if (seg.kind == Segment::Kind::Payload && !notif_follows) --slots_[seg.tag].payload_sends;

    const int res = cqe.res;
    if (res > 0) {
        seg.done += static_cast<uint32_t>(res);
        if (seg.done < seg.length) chain_broken_ = true;
    } else if (res == -ECANCELED || res == -EAGAIN || res == -EINTR) {
        chain_broken_ = true;
    } else if (res == 0) {
        fail("NBD session: the connection accepts no more data");
    } else if (res == -EPIPE || res == -ECONNRESET) {
        fail("NBD session: the server closed the connection while a request was being sent");
    } else {
        fail_io("NBD session: sending to the server failed", res);
    }
    if (chain_cqes_pending_ == 0) finish_chain();
    if (payload) maybe_complete(tag);
}

void Session::finish_chain() {
    chain_in_flight_ = false;
    std::size_t first = 0;
    while (first < chain_.size() && chain_[first].done >= chain_[first].length) ++first;
    if (first == chain_.size()) {
        // Keep chain_ until the next build: late SEND_ZC notifications only use the tag.
        chain_broken_ = false;
        if (disc_queued_) disc_sent_ = true;
        return;
    }
    chain_broken_ = true;  // prepare_sqes resumes at `first`
    // Stepwise, a segment sent whole just hands over to the next one.
    if (!stepwise_ || chain_[first].done > 0) ++stats_.broken_chains;
    chain_resume_ = first;
}

}  // namespace unbd::nbd
