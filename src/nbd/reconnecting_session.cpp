#include "nbd/reconnecting_session.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "uring/sqe.h"
#include "uring/user_data.h"

namespace unbd::nbd {

namespace {
// Up to this size a write's data is copied into the log inline, in this
// thread (copy_request_data: cheap for small writes); larger ones go to
// the kernel as a WRITE_FIXED that runs beside the network send. Measured
// in the TCG guest: inline won at 4K (0.79x -> 0.91x of copy mode), lost at
// 1M (0.98x -> 0.78x of the kernel client); 64K is between, not measured.
constexpr uint32_t kInlineCopyMax = 64 * 1024;

bool writes_data(BlockOp op) { return op == BlockOp::Write || op == BlockOp::Trim || op == BlockOp::WriteZeroes; }
}  // namespace

ReconnectingSession::ReconnectingSession(uring::Ring& ring, Connection first, SessionOptions session,
                                         ReconnectOptions options)
    : ring_(ring),
      session_options_(std::move(session)),
      opt_(std::move(options)),
      info_(first.info),
      own_tag_(session_options_.queue_depth),
      reqs_(std::size_t{session_options_.queue_depth} + 1) {
    if (!session_options_.on_complete) throw Error("NBD session: on_complete is required");
    if (session_options_.queue_depth == 0xffff) throw Error("NBD session: queue depth too large");
    adopt(std::move(first));
}

ReconnectingSession::~ReconnectingSession() = default;

uint64_t ReconnectingSession::user_data(Kind kind, uint64_t value) const {
    return uring::UserData{uring::Owner::NbdSession, session_options_.instance, kind, value}.encode();
}

bool ReconnectingSession::logs_data(const BlockRequest& r) const {
    // A FUA write is stable once acknowledged: nothing to replay.
    return opt_.log && opt_.log->mode() == Durability::Replay && writes_data(r.op) && !r.fua;
}

void ReconnectingSession::submit(const BlockRequest& r) {
    Request& q = reqs_.at(r.tag);
    q = Request{};
    q.req = r;
    q.order = ++next_order_;
    q.active = true;
    if (r.op == BlockOp::Flush && opt_.log && opt_.log->take_flush_poison()) {
        spdlog::error("FLUSH failed on purpose: writes acknowledged before the server was lost may be gone "
                      "(--durability=fail-flush)");
        q.reply_in = true;
        q.result = -EIO;
        ready_.push_back(r.tag);
        return;
    }
    if (logs_data(r)) {
        // Log room is handed out in arrival order: nobody overtakes a waiter.
        const bool behind_a_waiter = !log_waiters_.empty();
        if (behind_a_waiter || !try_reserve(r.tag)) {
            if (!behind_a_waiter) ++stats_.log_waits;
            log_waiters_.push_back(r.tag);
            return;
        }
    }
    send(r.tag);
}

// Reserves log room and starts the copy of the write's data into it.
bool ReconnectingSession::try_reserve(uint16_t tag) {
    Request& q = reqs_[tag];
    const bool has_data = q.req.op == BlockOp::Write;
    auto res = opt_.log->reserve(has_data ? q.req.length : 0);
    if (!res) return false;
    q.log = *res;
    if (has_data && session_options_.buffer_kind == BufferKind::UserAddress) {
        // Our own buffer: a plain copy, no SQE, no kernel worker.
        std::memcpy(opt_.log->data(*res), reinterpret_cast<const void*>(static_cast<uintptr_t>(payload_addr(session_options_, tag, 0))),
                    q.req.length);
    } else if (has_data && opt_.copy_request_data && q.req.length <= kInlineCopyMax) {
        const int n = opt_.copy_request_data(tag, opt_.log->data(*res), q.req.length);
        if (n != static_cast<int>(q.req.length)) {
            q.copy_failed = true;
            spdlog::error("cannot copy a write ({} bytes at {}) into the durability log: {}", q.req.length,
                          q.req.offset, n < 0 ? std::strerror(-n) : "short read");
        }
    } else if (has_data) {
        io_uring_sqe* sqe = ring_.get_sqe();
        uring::prep_write_fixed(sqe, uring::Target::plain(opt_.log->data_fd()), payload_addr(session_options_, tag, 0), q.req.length, tag,
                                res->file_offset);
        uring::set_user_data(sqe, user_data(kLogCopy, tag));
        q.copy_pending = true;
        ++copies_in_kernel_;
    }
    // Copied already, into our memory: the session may send the bytes from
    // there, with their header, in one SENDMSG (send_chain.cpp).
    if (has_data && !q.copy_pending && !q.copy_failed && opt_.send_from_log) q.req.data_copy = opt_.log->data(*res);
    return true;
}

void ReconnectingSession::send(uint16_t tag) {
    Request& q = reqs_[tag];
    if (connected()) {
        q.in_session = true;
        if (opt_.io_timeout.count() > 0) q.sent_at = Clock::now();
        if (q.req.op == BlockOp::Flush && opt_.log) q.flush_mark = opt_.log->flush_mark();
        session_->submit(q.req);
    } else if (gone_for_good_ || (opt_.redialer && opt_.redialer->failing(Clock::now()))) {
        q.reply_in = true;
        q.result = -EIO;
        ready_.push_back(tag);
    } else {
        held_.push_back(tag);
    }
}

void ReconnectingSession::on_session_complete(uint16_t tag, int result) {
    Request& q = reqs_[tag];
    q.in_session = false;
    if (tag == own_tag_) {
        own_flush_busy_ = false;
        q.active = false;
        if (result >= 0) opt_.log->flushed(q.flush_mark);
        return;
    }
    if (result >= 0 && q.req.op == BlockOp::Flush && opt_.log) opt_.log->flushed(q.flush_mark);
    q.reply_in = true;
    q.result = result;
    if (q.copy_pending && result >= 0) ++unlogged_acks_;
    try_finish(tag);
}

void ReconnectingSession::on_copy_cqe(uint16_t tag, int res) {
    Request& q = reqs_[tag];
    --copies_in_kernel_;
    q.copy_pending = false;
    if (res != static_cast<int>(q.req.length)) {
        q.copy_failed = true;
        spdlog::error("cannot copy a write ({} bytes at {}) into the durability log: {}", q.req.length, q.req.offset,
                      res < 0 ? std::strerror(-res) : "short write");
    }
    if (q.reply_in && q.result >= 0) --unlogged_acks_;
    try_finish(tag);
}

// A request completes to the frontend once its reply is in and no copy
// still reads its buffer; only then is it logged as acknowledged.
void ReconnectingSession::try_finish(uint16_t tag) {
    Request& q = reqs_[tag];
    if (!q.active || !q.reply_in || q.copy_pending) return;
    int result = q.result;
    if (q.log.id != 0) {
        if (result >= 0 && !q.copy_failed)
            opt_.log->acknowledged(q.log, q.req);
        else
            opt_.log->release(q.log);
        // The server has it, but a restart could lose it: say the truth.
        if (result >= 0 && q.copy_failed) result = -EIO;
    } else if (result >= 0 && opt_.log && opt_.log->mode() == Durability::FailFlush && writes_data(q.req.op) &&
               !q.req.fua) {
        opt_.log->acknowledged({}, q.req);
    }
    q.active = false;
    session_options_.on_complete(tag, result);
}

void ReconnectingSession::check_io_timeout(Clock::time_point now) {
    next_timeout_check_ = now + std::min<Clock::duration>(opt_.io_timeout / 4, std::chrono::seconds(1));
    for (const Request& q : reqs_) {
        if (!q.active || !q.in_session || now - q.sent_at < opt_.io_timeout) continue;
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(opt_.io_timeout).count();
        session_->fail("NBD session: no reply for " + std::to_string(secs) + " s to a " + name(q.req.op) +
                       " at offset " + std::to_string(q.req.offset) + " (--io-timeout): the server stopped answering");
        return;
    }
}

// Once the failed Session has nothing in the kernel: take its unfinished
// requests back, close the connection, and tell the Redialer when every
// acknowledged write is in the log.
void ReconnectingSession::park_if_idle() {
    if (session_ && session_->idle() && !gone_for_good_) {
        std::vector<uint16_t> given_up;
        // Re-sending what the kernel refused would be refused again.
        const bool refused = session_->refused_by_kernel();
        for (const BlockRequest& r : session_->take_unfinished()) {
            Request& q = reqs_[r.tag];
            q.in_session = false;
            if (r.tag == own_tag_) {
                own_flush_busy_ = false;
                q.active = false;
            } else if (refused) {
                spdlog::error("connection {}: a {} at offset {} fails with EIO: the kernel refused unbd's own I/O "
                              "({}), which no new connection can cure",
                              opt_.index, name(q.req.op), q.req.offset, session_->failure_reason());
                given_up.push_back(r.tag);
            } else if (++q.losses >= kLossesBeforeFailing) {
                spdlog::error("connection {}: a {} at offset {} was out each time the connection was lost, {} times "
                              "in a row: failing it with EIO",
                              opt_.index, name(q.req.op), q.req.offset, static_cast<int>(q.losses));
                given_up.push_back(r.tag);
            } else {
                held_.push_back(r.tag);
            }
        }
        for (uint16_t tag : given_up) {
            reqs_[tag].reply_in = true;
            reqs_[tag].result = -EIO;
            try_finish(tag);
        }
        if (opt_.redialer) {
            session_.reset();
            socket_.reset();
            tls_.reset();
        } else {
            gone_for_good_ = true;  // the failed Session stays, for its failure_reason()
        }
    }
    if (!session_ && opt_.redialer && !parked_reported_ && unlogged_acks_ == 0) {
        parked_reported_ = true;
        opt_.redialer->parked(opt_.index);
    }
}

void ReconnectingSession::fail_held(int error) {
    std::deque<uint16_t> tags;
    tags.swap(held_);
    for (uint16_t t : log_waiters_) tags.push_back(t);
    log_waiters_.clear();
    for (uint16_t tag : tags) {
        reqs_[tag].reply_in = true;
        reqs_[tag].result = error;
        try_finish(tag);
    }
}

void ReconnectingSession::adopt(Connection c) {
    socket_ = std::move(c.socket);
    tls_ = std::move(c.tls);
    SessionOptions so = session_options_;
    so.queue_depth = static_cast<uint16_t>(own_tag_ + 1);
    so.on_complete = [this](uint16_t tag, int result) { on_session_complete(tag, result); };
    target_ = opt_.bind_socket ? opt_.bind_socket(socket_.get()) : uring::Target::plain(socket_.get());
    session_ = std::make_unique<Session>(ring_, target_, socket_.get(), info_, std::move(so));
    // The watch: fires on EOF, reset or error only (POLLHUP/POLLERR are
    // always reported); it holds no memory of ours, only the file.
    ++generation_;
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_poll_add(sqe, target_.fd, POLLRDHUP);
    if (target_.fixed) sqe->flags |= IOSQE_FIXED_FILE;
    uring::set_user_data(sqe, user_data(kWatch, generation_));
    if (disc_requested_) session_->disconnect();
    const bool was_lost = lost_reported_;
    lost_reported_ = false;
    parked_reported_ = false;
    if (!was_lost) return;
    std::vector<uint16_t> tags(held_.begin(), held_.end());
    held_.clear();
    std::sort(tags.begin(), tags.end(), [&](uint16_t a, uint16_t b) { return reqs_[a].order < reqs_[b].order; });
    spdlog::info("connection {}: back after {:.3f} s; re-sending {} held requests", opt_.index,
                 std::chrono::duration<double>(Clock::now() - lost_at_).count(), tags.size());
    stats_.requests_replayed += tags.size();
    for (uint16_t tag : tags) send(tag);
}

void ReconnectingSession::retry_log_waiters() {
    while (!log_waiters_.empty() && try_reserve(log_waiters_.front())) {
        const uint16_t tag = log_waiters_.front();
        log_waiters_.pop_front();
        send(tag);
    }
    if (log_waiters_.empty() || own_flush_busy_ || !connected() || !opt_.log->has_unflushed()) return;
    // Full: make room by flushing what is logged (new writes wait meanwhile).
    send_own_flush();
}

void ReconnectingSession::send_own_flush() {
    Request& q = reqs_[own_tag_];
    q = Request{};
    q.req = BlockRequest{.tag = own_tag_, .op = BlockOp::Flush};
    q.active = true;
    own_flush_busy_ = true;
    ++stats_.own_flushes;
    send(own_tag_);
}

void ReconnectingSession::arm_wake() {
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_poll_add(sqe, opt_.redialer->wake_fd(opt_.index), POLLIN);
    uring::set_user_data(sqe, user_data(kWake, 0));
    wake_armed_ = true;
}

void ReconnectingSession::on_wake() {
    wake_armed_ = false;
    Redialer::Order order = opt_.redialer->poll(opt_.index);
    if (order.drop && connected())
        session_->fail(order.planned ? "NBD session: renegotiating (the export is being resized)"
                                     : "NBD session: dropped, to reconnect together with the device's other connections");
    if (order.connection) {
        if (session_) {  // cannot happen: connections come only to parked links
            spdlog::error("connection {}: a new connection arrived while one is open; closing it", opt_.index);
            return;
        }
        adopt(std::move(*order.connection));
    }
}

// The peer closed or reset the connection (or our own shutdown after a
// failure, or the server closing after NBD_CMD_DISC: both expected).
void ReconnectingSession::on_watch(uint64_t generation, int res) {
    if (generation != (generation_ & uring::UserData::kValueMask) || !connected() || disc_requested_) return;
    if (res < 0) {
        spdlog::debug("connection {}: watch failed: {}", opt_.index, std::strerror(-res));
        return;
    }
    // With requests out, the reply reader or the send chain sees the end
    // too, and says more precisely where; otherwise it is ours to tell.
    peer_gone_ = (res & POLLRDHUP) ? "NBD session: the server closed the connection"
                                   : "NBD session: the connection was reset";
}

void ReconnectingSession::prepare_sqes() {
    const auto now = Clock::now();
    // A frontend may submit again from its completion callback; when the
    // connection is gone that request lands in ready_ at once. Finishing
    // only this round's batch keeps such a loop from spinning here forever.
    finishing_.swap(ready_);
    for (uint16_t tag : finishing_) try_finish(tag);
    finishing_.clear();
    if (!peer_gone_.empty() && connected() && session_->in_flight() == 0) session_->fail(peer_gone_);
    if (session_ && session_->failed()) {
        peer_gone_.clear();
        if (!lost_reported_) {
            lost_reported_ = true;
            lost_at_ = now;
            failure_reason_ = session_->failure_reason();
            ++stats_.connections_lost;
            spdlog::warn("connection {} lost: {}", opt_.index, failure_reason_);
            if (opt_.redialer) opt_.redialer->lost(opt_.index, failure_reason_);
        }
    } else if (session_ && opt_.io_timeout.count() > 0 && now >= next_timeout_check_) {
        check_io_timeout(now);
    }
    if (lost_reported_) park_if_idle();
    if ((!session_ || gone_for_good_) && (gone_for_good_ || (opt_.redialer && opt_.redialer->failing(now))) &&
        (!held_.empty() || !log_waiters_.empty()))
        fail_held(-EIO);
    if (opt_.redialer && !wake_armed_) arm_wake();
    if (opt_.log && opt_.log->mode() == Durability::Replay) retry_log_waiters();
    if (session_) session_->prepare_sqes();
}

bool ReconnectingSession::handle_cqe(const io_uring_cqe& cqe) {
    const auto ud = uring::UserData::decode(cqe.user_data);
    if (ud.owner != uring::Owner::NbdSession || ud.instance != session_options_.instance) return false;
    if (ud.kind == kLogCopy) {
        on_copy_cqe(static_cast<uint16_t>(ud.value), cqe.res);
    } else if (ud.kind == kWake) {
        on_wake();
    } else if (ud.kind == kWatch) {
        on_watch(ud.value, cqe.res);
    } else if (session_) {
        session_->handle_cqe(cqe);
    }
    return true;
}

// What the log holds dies with this process: make it stable on the server
// first (a detach, a hand-over to a new daemon), then NBD_CMD_DISC.
void ReconnectingSession::disconnect() {
    if (disc_requested_) return;
    disc_requested_ = true;
    if (connected() && opt_.log && opt_.log->has_unflushed() && !own_flush_busy_) send_own_flush();
    if (session_) session_->disconnect();
}

bool ReconnectingSession::disconnected() const {
    return !session_ || session_->disconnected() || session_->failed();
}

bool ReconnectingSession::idle() const { return (!session_ || session_->idle()) && copies_in_kernel_ == 0; }

}  // namespace unbd::nbd
