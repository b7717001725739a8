// ReconnectingSession: what a frontend (ublk queue, synthetic frontend)
// drives instead of a bare Session. It keeps one connection's Session and
// adds what must outlive a connection:
//
//   detection  EOF, reset and protocol errors come from the Session while
//              requests are out; an idle connection is watched by a
//              POLL_ADD(POLLRDHUP) armed once per connection (normal replies
//              never trigger it), so a server that went away is noticed
//              without I/O. A request with no reply for io_timeout fails
//              the connection too.
//   parking    when the connection fails, its unfinished requests are taken
//              back (Session::take_unfinished) and held, with new ones, in
//              arrival order until the Redialer hands over a new connection;
//              then they are re-sent in that order. While the Redialer says
//              failing() they complete with -EIO instead. A request that was
//              out when kLossesBeforeFailing connections in a row were lost
//              fails with -EIO instead of going out again: a server that
//              never answers it, or drops the connection over it, would
//              otherwise hold it (and its caller) forever. When the
//              kernel refused our own op (Session::refused_by_kernel), what
//              was out fails with -EIO at once: re-sending gets the same.
//   durability with a DurabilityLog (Replay), every WRITE's data is copied
//              into the log: by memcpy from our own buffer (copy mode); in
//              zero copy by the frontend's copy_request_data for small
//              writes (ublk USER_COPY: one pread, no kernel worker), else
//              by an io_uring WRITE_FIXED from the request's registered
//              buffer into the log's memfd while it is on the
//              wire; a write completes to the frontend only when both the
//              server's reply and the copy are in, and is then logged as
//              acknowledged.
//              A successful FLUSH drops what it covers. A full log parks
//              writes and sends a FLUSH of our own (on the spare tag
//              queue_depth). FailFlush: no copies; a poisoned FLUSH fails.
//
// Threading: one thread (the ring's issuer) calls everything, like Session;
// only the Redialer's mailbox is shared (it wakes us through an eventfd
// polled on our ring). Without a Redialer a lost connection fails every
// request with -EIO for good (the behaviour before reconnect existed).
//
// user_data: the Session's owner byte and instance; kinds 8..10 are ours
// (the Session uses 1..3). The watch carries the connection's generation,
// so a late CQE from an old connection is ignored.
//
// Lifetime: destroy only when idle(): no SQE of ours or the Session's is in
// the kernel (the owner keeps reaping until then).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nbd/connect.h"
#include "nbd/durability_log.h"
#include "nbd/redialer.h"
#include "nbd/session.h"

namespace unbd::nbd {

struct ReconnectOptions {
    std::chrono::milliseconds io_timeout{30'000};  // 0: never
    DurabilityLog* log = nullptr;  // nullptr: trust the server (no log)
    Redialer* redialer = nullptr;  // nullptr: a lost connection is final
    unsigned index = 0;            // this connection's number at the Redialer
    // Makes a new connection's fd usable on the ring (e.g. registers it as a
    // fixed file); returns how SQEs name it. Default: the plain fd.
    std::function<uring::Target(int fd)> bind_socket;
    // Zero copy only: copies `length` bytes of tag's request data into
    // `dest` now, returning bytes copied or -errno (the ublk queue's
    // USER_COPY pread). Used for small writes; large ones, and all when
    // unset, are copied by an io_uring WRITE_FIXED.
    std::function<int(uint16_t tag, void* dest, uint32_t length)> copy_request_data;
    // A write copied that way is sent from the log's copy (BlockRequest::
    // data_copy): one SENDMSG for a chain of them. Off in tests that need a
    // write to take the fixed-buffer sends.
    bool send_from_log = true;
};

struct LinkStats {
    uint64_t connections_lost = 0;
    uint64_t requests_replayed = 0;   // parked requests re-sent on a new connection
    uint64_t log_waits = 0;           // writes that waited for room in the log
    uint64_t own_flushes = 0;         // FLUSHes of our own: log full, or before disconnecting
};

class ReconnectingSession {
public:
    // A request out at this many lost connections in a row fails (parking).
    static constexpr uint8_t kLossesBeforeFailing = 3;
    using Clock = std::chrono::steady_clock;

    // `session` describes the frontend's tags (0 .. queue_depth-1) and its
    // on_complete; the Session made here has one more tag for our FLUSH.
    ReconnectingSession(uring::Ring& ring, Connection first, SessionOptions session, ReconnectOptions options);
    ~ReconnectingSession();
    ReconnectingSession(const ReconnectingSession&) = delete;
    ReconnectingSession& operator=(const ReconnectingSession&) = delete;

    void submit(const BlockRequest& request);
    void prepare_sqes();
    bool handle_cqe(const io_uring_cqe& cqe);

    // NBD_CMD_DISC once everything completed (see Session::disconnect).
    void disconnect();
    bool disconnected() const;
    bool idle() const;
    bool connected() const { return session_ && !session_->failed(); }
    // The current connection's Session (nullptr while reconnecting).
    Session* session() { return session_.get(); }
    // Whether a wait must not hold its wake-up (Session::receive_backlogged);
    // always so while reconnecting, when nothing is in flight to gather.
    bool receive_backlogged() const { return session_ == nullptr || session_->receive_backlogged(); }
    // Session::send_cqes_to_come; 0 while reconnecting.
    unsigned send_cqes_to_come() const { return session_ == nullptr ? 0 : session_->send_cqes_to_come(); }
    const std::string& failure_reason() const { return failure_reason_; }
    int socket_fd() const { return socket_.get(); }  // -1 while reconnecting
    const LinkStats& stats() const { return stats_; }

private:
    struct Request {
        BlockRequest req;
        uint64_t order = 0;          // arrival, for replay in order
        DurabilityLog::Reservation log;
        bool copy_pending = false;   // WRITE_FIXED into the log in the kernel
        bool copy_failed = false;
        bool reply_in = false;       // the Session completed it
        int result = 0;
        uint64_t flush_mark = 0;     // FLUSH: the log sequence when sent
        Clock::time_point sent_at{};
        bool in_session = false;
        bool active = false;
        uint8_t losses = 0;          // connections lost while it was out (kLossesBeforeFailing)
    };
    enum Kind : uint8_t { kLogCopy = 8, kWake = 9, kWatch = 10 };

    uint64_t user_data(Kind kind, uint64_t value) const;
    bool logs_data(const BlockRequest& r) const;
    bool try_reserve(uint16_t tag);  // log room + the copy into it; false: full
    void send(uint16_t tag);         // to the Session, or held, or failed
    void on_session_complete(uint16_t tag, int result);
    void on_copy_cqe(uint16_t tag, int res);
    void try_finish(uint16_t tag);
    void check_io_timeout(Clock::time_point now);
    void park_if_idle();
    void adopt(Connection c);
    void fail_held(int error);
    void retry_log_waiters();
    void send_own_flush();           // on the spare tag
    void arm_wake();
    void on_wake();
    void on_watch(uint64_t generation, int res);

    uring::Ring& ring_;
    SessionOptions session_options_;  // as given by the frontend
    ReconnectOptions opt_;
    ExportInfo info_;                 // of the first connection: the device's
    const uint16_t own_tag_;          // == queue depth: our FLUSH
    Fd socket_;
    std::unique_ptr<TlsPump> tls_;  // nbds: the pump behind socket_
    uring::Target target_;            // how SQEs name socket_
    uint64_t generation_ = 0;         // connections adopted so far
    std::string peer_gone_;           // the watch fired: why, until the Session fails
    std::unique_ptr<Session> session_;

    std::vector<Request> reqs_;       // by tag (+ own_tag_)
    std::deque<uint16_t> held_;       // parked: waiting for a connection
    std::deque<uint16_t> log_waiters_;
    std::vector<uint16_t> ready_;     // tags to try_finish in prepare_sqes
    std::vector<uint16_t> finishing_; // prepare_sqes' batch of ready_ (reused storage)
    uint64_t next_order_ = 0;
    unsigned copies_in_kernel_ = 0;
    unsigned unlogged_acks_ = 0;      // replied writes whose copy is still running
    bool own_flush_busy_ = false;
    bool lost_reported_ = false;      // the current loss was logged and told
    bool parked_reported_ = false;    // the Redialer knows we are parked
    bool wake_armed_ = false;
    bool disc_requested_ = false;
    bool gone_for_good_ = false;      // no Redialer and the connection failed
    Clock::time_point lost_at_{};
    Clock::time_point next_timeout_check_{};
    std::string failure_reason_;
    LinkStats stats_;
};

}  // namespace unbd::nbd
