// Session: one NBD connection in transmission phase, driven entirely by a
// caller-owned io_uring. The owner (a ublk queue thread, or the synthetic
// frontend in tests and benchmarks) runs the loop; the session never
// submits or waits on its own:
//
//     for (;;) {
//         session.prepare_sqes();          // next send chain, reply reader
//         ring.submit_and_wait(1);
//         ring.drain_cqes([&](const io_uring_cqe& c) {
//             if (!session.handle_cqe(c)) { /* the owner's own CQE */ }
//         });
//     }
//
// Threading: one thread (the ring's issuer) calls everything. on_complete
// is called from handle_cqe() and prepare_sqes(); it may call submit().
//
// Sends: one link chain in flight (IOSQE_IO_LINK between every SQE, none
// on the last), reserved together so no submit cuts it; requests arriving
// meanwhile are batched into the next chain. A short or failed send breaks
// the chain: the remainder and the cancelled SQEs are resent in order.
// Stepwise (kTLS): the same chain, one unlinked SQE in flight at a time.
// Replies: one reader; a 16-byte simple reply header, then for READ the
// payload straight into the fixed buffer at index == tag. With UserCopy or
// fill_request, replies are read in bulk into a staging buffer instead
// (kernel-registered buffers: not while the session runs at QD1, whose
// READ payload then goes straight into the request).
//
// SIGPIPE: the process must ignore it. WRITE_FIXED (read_write_fixed mode)
// has no MSG_NOSIGNAL, so a server that closed its end kills a process that
// still has the default action; with SIGPIPE ignored the send fails EPIPE.
//
// Failure: a lost connection or protocol violation marks the session
// failed (failure_reason() says why), shuts the socket down so every
// pending SQE completes, and stops arming new ones. Once idle() the owner
// either takes the unfinished requests (take_unfinished(), to replay them
// on a new connection) or fails them (fail_unfinished(-EIO)). Nothing is
// ever lost: each submitted tag completes exactly once, or is handed back.
//
// Measured (6.18, nbdkit memory): on a ring with DEFER_TASKRUN, each link of
// a send chain and each partial READ_FIXED advances only about once per
// io_uring_enter (the next link is queued as deferred task work), so the
// fixed-buffer modes run 2-4x slower there than on a COOP_TASKRUN-only ring
// (4K QD1 write p50 140 us vs 46 us; 1M QD8 read 370 vs 1500 IOPS). UserCopy
// (one SENDMSG per chain, recv MSG_WAITALL, bulk reply parsing) does not
// care. Owners running fixed-buffer modes: prefer a ring without
// DEFER_TASKRUN (RingOptions::fast_taskrun=false keeps plain setup).
//
// Lifetime: the session must outlive every SQE it queued: destroy it only
// when idle() (the owner keeps reaping CQEs until then).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <sys/socket.h>
#include <sys/uio.h>

#include <functional>
#include <string>
#include <vector>

#include "nbd/block_request.h"
#include "nbd/export_info.h"
#include "nbd/payload.h"
#include "nbd/request_slot.h"
#include "proto/nbd_wire.h"
#include "uring/ring.h"
#include "uring/sqe.h"

namespace unbd::nbd {

struct SessionOptions {
    uint16_t queue_depth = 64;       // tags 0 .. queue_depth-1
    uint32_t max_request_bytes = 1u << 20;  // largest BlockRequest::length for READ/WRITE
    BufferKind buffer_kind = BufferKind::UserAddress;
    // UserAddress only: the user address of tag's registered buffer.
    std::function<uint64_t(uint16_t tag)> buffer_base;
    PayloadOps payload_ops = PayloadOps::ReadWriteFixed;  // UserCopy needs UserAddress
    uint8_t instance = 0;            // user_data instance byte (several sessions on one ring)
    unsigned max_chain_sqes = 64;    // cap on one link chain (must fit the SQ)
    std::function<void(uint16_t tag, int result)> on_complete;  // bytes or -errno
    // When set, the export's current size in bytes (the device may be
    // resized while sessions live); otherwise the handshake's size.
    const std::atomic<uint64_t>* export_size = nullptr;
    // KernelOffset only, optional: copies READ payload bytes into tag's
    // request buffer at `offset` now (ublk USER_COPY: one pwrite), returning
    // bytes copied or -errno. With it replies are received in bulk, as in
    // UserCopy: many replies per recv, small READ payloads copied out of the
    // bulk buffer, the rest of a large one received straight into the
    // registered buffer.
    std::function<int(uint16_t tag, uint32_t offset, const void* src, uint32_t length)> fill_request;
    // Fixed-buffer modes: send a chain's segments one SQE at a time, each
    // after the previous one completed, without MSG_WAITALL (a short send is
    // resent from where it stopped). Forced on a kernel TLS socket, whose
    // sendmsg refuses MSG_WAITALL (nbd/ktls.h); an option so the host, which
    // has no kTLS, tests the same path.
    bool stepwise_sends = false;
};

// Where byte `offset` of tag's payload is, as SQEs name it: the one place
// that knows user buffers (an address) from kernel-registered ones (an
// offset into the request's buffer). See nbd/payload.h.
inline uint64_t payload_addr(const SessionOptions& o, uint16_t tag, uint32_t offset) {
    return o.buffer_kind == BufferKind::KernelOffset ? offset : o.buffer_base(tag) + offset;
}

// Counters for tests, benchmarks and `unbd stats`.
struct SessionStats {
    uint64_t chains = 0;          // link chains submitted (resends included)
    uint64_t broken_chains = 0;   // chains cut by a short or cancelled send
    uint64_t send_sqes = 0;       // SQEs those chains took (a SENDMSG is one)
    uint64_t commands = 0;        // NBD commands sent
    uint64_t replies = 0;         // replies received
};

class Session {
public:
    // socket: connected, transmission phase; a plain fd, or a registered
    // file index. raw_fd is the plain fd (for shutdown on failure), even
    // when socket is a registered index.
    Session(uring::Ring& ring, uring::Target socket, int raw_fd, const ExportInfo& info, SessionOptions options);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Queues one request for its tag. Requests that need no I/O or are
    // refused (unaligned, unsupported, session failed) complete at the next
    // prepare_sqes(). A tag must not be resubmitted before it completed.
    void submit(const BlockRequest& request);

    // Called once per loop iteration before the owner submits.
    void prepare_sqes();

    // False when the CQE is not this session's (owner byte / instance).
    bool handle_cqe(const io_uring_cqe& cqe);

    bool failed() const noexcept { return failed_; }
    // Replies are arriving faster than one recv takes them: a READ payload
    // is being received one recv at a time, or the last bulk recv filled
    // the staging buffer, or replies are read header by header. Each recv
    // completion must then re-arm the next at once (uring/wake_batch.h).
    bool receive_backlogged() const noexcept {
        return reader_ == ReaderState::Payload || stage_.empty() || last_recv_filled_stage_;
    }
    // CQEs the send chain in flight will still post, when nothing else
    // waits to be sent and a reply is awaited: each completes without any
    // action of the owner, and the reply's recv CQE comes after them, so an
    // owner may wait for all of them and one more in one io_uring_enter
    // (uring/wake_batch.h, QD1). Zero otherwise -- stepwise sends each need
    // the owner to start the next.
    unsigned send_cqes_to_come() const noexcept {
        const bool only_replies_left = chain_in_flight_ && fifo_size_ == 0 && !stepwise_ && reader_armed_;
        return only_replies_left && replies_expected_ > 0 ? chain_cqes_pending_ : 0;
    }
    const std::string& failure_reason() const noexcept { return failure_reason_; }
    // The failure was the kernel refusing one of our own operations (EINVAL,
    // EOPNOTSUPP, EFAULT, ...), not the connection: a new one would get the
    // same answer, so the owner should not re-send what was out.
    bool refused_by_kernel() const noexcept { return refused_by_kernel_; }
    // True when no SQE of this session is in the kernel.
    bool idle() const noexcept { return sqes_in_kernel_ == 0; }
    // Requests submitted and not yet completed.
    unsigned in_flight() const noexcept { return active_count_; }
    // True when nothing is pending and no I/O is outstanding.
    bool drained() const noexcept { return active_count_ == 0 && ready_.empty() && idle(); }

    // After failure, once idle(): every unfinished request, removed from the
    // session without completing it (for replay on a new connection).
    std::vector<BlockRequest> take_unfinished();
    // Completes every unfinished request with `error` (negative errno).
    void fail_unfinished(int error);

    // Sends NBD_CMD_DISC once every request has completed; afterwards
    // submit() is refused. disconnected() turns true once it was sent.
    void disconnect();
    bool disconnected() const noexcept { return disc_sent_; }

    const SessionStats& stats() const noexcept { return stats_; }

    // Fails the session from outside (e.g. a timeout in the owner).
    void fail(const std::string& reason);

private:
    // fail() for an I/O CQE's negative result; notes refused_by_kernel().
    void fail_io(const std::string& what, int res);
    // One part = one NBD command (a READ/WRITE piece, or the FUA flush).
    using Slot = RequestSlot;
    struct Segment {
        enum class Kind : uint8_t { Headers, Payload } kind;
        uint16_t tag = 0;
        uint32_t offset = 0;  // Headers: into header_buf_; Payload: into the tag's buffer
        uint32_t length = 0;
        uint32_t done = 0;    // bytes confirmed sent
        bool notif_pending = false;  // SEND_ZC: buffer still referenced
    };
    enum class ReaderState : uint8_t { Idle, Header, Payload };
    enum Kind : uint8_t { kSend = 1, kRecvHeader = 2, kRecvPayload = 3 };

    // session.cpp
    uint64_t payload_addr(uint16_t tag, uint32_t offset) const;  // the BufferKind switch
    uint64_t user_data(Kind kind, uint64_t value) const;
    int validate(const BlockRequest& r) const;
    uint32_t part_length(const Slot& s, uint16_t part, uint32_t* buf_offset) const {
        return nbd::part_length(s, part, chunk_, buf_offset);
    }
    void maybe_complete(uint16_t tag);
    void complete_later(uint16_t tag, int result);
    void enqueue(uint16_t tag);
    void flush_ready();

    // send_chain.cpp
    void build_chain();
    void start_chain();
    void start_sendmsg();
    bool payloads_in_our_memory() const;
    void* segment_base(const Segment& seg) const;
    void on_send_cqe(uint64_t value, const io_uring_cqe& cqe);
    void finish_chain();
    void queue_disc();

    // reply_reader.cpp
    void arm_reader();
    void on_header_cqe(int res);
    void on_payload_cqe(int res);
    void handle_reply();
    void process_stage();
    void payload_done();
    void on_tls_control_record();
    bool deliver_payload(const std::byte* src, uint32_t length);

    uring::Ring& ring_;
    uring::Target socket_;
    bool kernel_tls_ = false;  // the socket runs kTLS (nbd/ktls.h): no MSG_WAITALL on sends
    bool stepwise_ = false;    // one unlinked send SQE at a time (SessionOptions::stepwise_sends)
    int raw_fd_;
    ExportInfo info_;
    SessionOptions opt_;
    uint32_t chunk_ = 0;  // READ/WRITE split size (<= server max, multiple of min)

    std::vector<Slot> slots_;
    std::vector<uint16_t> send_fifo_;  // ring buffer of tags
    std::size_t fifo_head_ = 0, fifo_size_ = 0;
    std::vector<std::pair<uint16_t, int>> ready_;  // completions deferred to prepare_sqes
    unsigned active_count_ = 0;

    // send chain
    std::vector<Segment> chain_;
    std::vector<std::byte> header_buf_;
    std::size_t header_used_ = 0;
    bool chain_in_flight_ = false;
    bool chain_broken_ = false;     // a short/cancelled send: resend the rest
    unsigned chain_cqes_pending_ = 0;
    std::size_t chain_resume_ = 0;  // first segment not fully sent
    std::vector<iovec> iov_;        // UserCopy or data_copy: the whole chain as one SENDMSG
    msghdr msg_{};

    // reply reader
    ReaderState reader_ = ReaderState::Idle;
    bool reader_armed_ = false;
    alignas(8) std::byte reply_buf_[proto::kSimpleReplySize]{};
    uint32_t reply_got_ = 0;
    uint16_t payload_tag_ = 0;
    uint16_t payload_part_ = 0;
    uint32_t payload_offset_ = 0;  // where in the tag's buffer the next byte goes
    uint32_t payload_left_ = 0;
    unsigned replies_expected_ = 0;  // NBD commands sent and not yet replied
    // UserCopy: replies are read in bulk into stage_ and parsed there; READ
    // payload found there is copied out, the rest received in place.
    std::vector<std::byte> stage_;
    std::size_t stage_pos_ = 0, stage_len_ = 0;
    bool last_recv_filled_stage_ = false;
    // Replies expected each time a bulk recv is armed, averaged (x16,
    // weight 1/8): the session's usual depth (reply_reader.cpp).
    unsigned armed_depth_x16_ = 0;

    SessionStats stats_;
    unsigned sqes_in_kernel_ = 0;
    bool failed_ = false;
    std::string failure_reason_;
    bool refused_by_kernel_ = false;
    bool disc_requested_ = false;
    bool disc_queued_ = false;
    bool disc_sent_ = false;
};

}  // namespace unbd::nbd
