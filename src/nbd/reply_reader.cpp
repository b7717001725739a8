// The reply reader: one recv in flight per socket. A 16-byte simple reply
// header (MSG_WAITALL into session memory), then for a successful READ the
// payload straight into the tag's fixed buffer, looping until complete,
// then the next header. In bulk mode (UserCopy, or fill_request) recvs fill
// stage_ and process_stage() parses every reply in it; at QD1 into a
// kernel-registered buffer, the recv takes the one reply's header alone and
// the payload is received as above. It is armed only
// while replies are expected, so an idle session has nothing in the kernel.
//
// On kTLS a receive that fails with EIO met a record that is not data: see
// on_tls_control_record.
//
// Every cookie is checked before use (judge_reply, nbd/request_slot.h):
// unknown tag, stale generation, a part never sent, a duplicate reply, bad
// magic → protocol error, session failed.
#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <span>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "nbd/ktls.h"
#include "nbd/request_slot.h"
#include "nbd/session.h"

namespace unbd::nbd {

namespace {
std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}
}  // namespace

void Session::arm_reader() {
    io_uring_sqe* sqe = ring_.get_sqe();
    if (reader_ == ReaderState::Idle) {
        reader_ = ReaderState::Header;
        reply_got_ = 0;
    }
    if (reader_ == ReaderState::Header && !stage_.empty()) {
        // At QD1 into kernel-registered buffers: the one reply's header
        // alone, so a READ's payload is received straight into the request
        // (one copy) instead of into stage_ and then pwrite (two copies and a
        // syscall). With more replies to come a bulk recv saves more, and a
        // moment with one reply to come at depth is not QD1: that took an
        // extra wake-up per dip and cost 4K randread QD32 about 4%, hence
        // the average depth (below 1.5) as well.
        armed_depth_x16_ += 2 * replies_expected_ - armed_depth_x16_ / 8;
        const bool qd1 = replies_expected_ == 1 && armed_depth_x16_ < 24 && stage_len_ == 0 &&
                         opt_.buffer_kind == BufferKind::KernelOffset;
        const std::size_t room = qd1 ? proto::kSimpleReplySize : stage_.size() - stage_len_;
        uring::prep_recv(sqe, socket_, stage_.data() + stage_len_, static_cast<uint32_t>(room), 0);
        uring::set_user_data(sqe, user_data(kRecvHeader, 0));
    } else if (reader_ == ReaderState::Header) {
        uring::prep_recv(sqe, socket_, reply_buf_ + reply_got_, proto::kSimpleReplySize - reply_got_, MSG_WAITALL);
        uring::set_user_data(sqe, user_data(kRecvHeader, 0));
    } else {
        const uint64_t addr = payload_addr(payload_tag_, payload_offset_);
        if (opt_.payload_ops == PayloadOps::UserCopy)
            uring::prep_recv(sqe, socket_, reinterpret_cast<void*>(static_cast<uintptr_t>(addr)), payload_left_,
                             MSG_WAITALL);
        else if (opt_.payload_ops == PayloadOps::SendRecvFixed)
            uring::prep_recv_fixed(sqe, socket_, addr, payload_left_, MSG_WAITALL, payload_tag_);
        else
            uring::prep_read_fixed(sqe, socket_, addr, payload_left_, payload_tag_);
        uring::set_user_data(sqe, user_data(kRecvPayload, payload_tag_));
    }
    reader_armed_ = true;
    ++sqes_in_kernel_;
}

void Session::on_header_cqe(int res) {
    reader_armed_ = false;
    --sqes_in_kernel_;
    if (failed_) return;
    if (res == -EINTR || res == -EAGAIN) return;  // re-armed by prepare_sqes
    if (res == 0 || res == -ECONNRESET) return fail("NBD session: the server closed the connection");
    if (kernel_tls_ && (res == -EIO || res == -EKEYEXPIRED)) return on_tls_control_record();
    if (res < 0) return fail_io("NBD session: receiving from the server failed", res);
    if (!stage_.empty()) {
        last_recv_filled_stage_ = stage_len_ + static_cast<std::size_t>(res) == stage_.size();
        stage_len_ += static_cast<std::size_t>(res);
        return process_stage();
    }
    reply_got_ += static_cast<uint32_t>(res);
    if (reply_got_ < proto::kSimpleReplySize) return;
    reader_ = ReaderState::Idle;
    handle_reply();
}

void Session::handle_reply() {
    using Kind = ReplyVerdict::Kind;
    const auto bytes = std::span<const std::byte, proto::kSimpleReplySize>(reply_buf_, proto::kSimpleReplySize);
    const ReplyVerdict v = judge_reply(bytes, slots_, chunk_);
    // The message is built only on failure: formatting it eagerly (snprintf,
    // string concatenation) cost about as much as the rest of the reply path.
    const auto protocol_error = [&](const char* before, const char* after) {
        fail(std::string("NBD session: protocol error: ") + before + "reply with cookie " + hex(v.raw_cookie) + after);
    };
    if (v.kind != Kind::BadMagic && v.kind != Kind::StructuredReply) ++stats_.replies;
    switch (v.kind) {
        case Kind::BadMagic: return fail("NBD session: protocol error: bad reply magic " + hex(v.magic));
        case Kind::StructuredReply:
            return fail("NBD session: protocol error: structured reply, but none were negotiated");
        case Kind::UnknownTag: return protocol_error("", " names no request");
        case Kind::NotInFlight: return protocol_error("", " answers no request in flight");
        case Kind::NotSent: return protocol_error("", " answers a request not sent yet");
        case Kind::Duplicate: return protocol_error("duplicate ", "");
        case Kind::ServerShutdown: return fail("NBD session: the server is shutting down (ESHUTDOWN)");
        case Kind::Payload:
            reader_ = ReaderState::Payload;
            payload_tag_ = v.cookie.tag;
            payload_part_ = v.cookie.part;
            payload_offset_ = v.buf_offset;
            payload_left_ = v.length;
            return;  // the part is replied once its payload is in
        case Kind::Replied: break;
    }
    Slot& s = slots_[v.cookie.tag];
    if (v.error != 0 && s.result == 0) s.result = v.error;
    mark_replied(s, v.cookie.part);
    --replies_expected_;
    maybe_complete(v.cookie.tag);
}

// Parses every complete reply in stage_, copying READ payload out of it.
void Session::process_stage() {
    while (!failed_) {
        const std::size_t avail = stage_len_ - stage_pos_;
        if (reader_ == ReaderState::Payload) {
            if (avail == 0) break;
            const auto n = static_cast<uint32_t>(std::min<std::size_t>(avail, payload_left_));
            if (!deliver_payload(stage_.data() + stage_pos_, n)) break;
            stage_pos_ += n;
            payload_offset_ += n;
            payload_left_ -= n;
            if (payload_left_ == 0) payload_done();
            continue;
        }
        if (avail < proto::kSimpleReplySize) break;
        std::memcpy(reply_buf_, stage_.data() + stage_pos_, proto::kSimpleReplySize);
        stage_pos_ += proto::kSimpleReplySize;
        reader_ = ReaderState::Idle;
        handle_reply();
    }
    // Keep a partial header for the next recv; payload goes straight to its buffer.
    const std::size_t left = stage_len_ - stage_pos_;
    if (left > 0 && stage_pos_ > 0) std::memmove(stage_.data(), stage_.data() + stage_pos_, left);
    stage_len_ = left;
    stage_pos_ = 0;
    if (reader_ != ReaderState::Payload) reader_ = left > 0 ? ReaderState::Header : ReaderState::Idle;
}

// READ payload found in the staging buffer, to the request's buffer.
bool Session::deliver_payload(const std::byte* src, uint32_t length) {
    if (opt_.buffer_kind == BufferKind::UserAddress) {
        std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(payload_addr(payload_tag_, payload_offset_))), src,
                    length);
        return true;
    }
    const int n = opt_.fill_request(payload_tag_, payload_offset_, src, length);
    if (n == static_cast<int>(length)) return true;
    fail(n < 0 ? errno_text("NBD session: cannot copy a READ payload into the request", -n)
               : std::string("NBD session: short copy of a READ payload into the request"));
    return false;
}

// kTLS: a record that is not data stopped the receive before it copied
// anything (nbd/ktls.h). A session ticket is dropped and the same receive
// posted again by prepare_sqes; anything else ends the connection.
void Session::on_tls_control_record() {
    if (std::string lost = take_control_record(raw_fd_); !lost.empty()) return fail("NBD session: " + lost);
    spdlog::info("dropped a TLS session ticket the server sent after the handshake");
}

void Session::payload_done() {
    reader_ = ReaderState::Idle;
    mark_replied(slots_[payload_tag_], payload_part_);
    --replies_expected_;
    maybe_complete(payload_tag_);
}

void Session::on_payload_cqe(int res) {
    reader_armed_ = false;
    --sqes_in_kernel_;
    if (failed_) return;
    if (res == -EINTR || res == -EAGAIN) return;
    if (res == 0 || res == -ECONNRESET)
        return fail("NBD session: the server closed the connection in the middle of a READ payload");
    if (kernel_tls_ && (res == -EIO || res == -EKEYEXPIRED)) return on_tls_control_record();
    if (res < 0) return fail_io("NBD session: receiving a READ payload failed", res);
    const auto n = static_cast<uint32_t>(res);
    if (n > payload_left_) return fail("NBD session: the kernel returned more payload than asked for");
    payload_offset_ += n;
    payload_left_ -= n;
    if (payload_left_ > 0) return;
    payload_done();
}

}  // namespace unbd::nbd
