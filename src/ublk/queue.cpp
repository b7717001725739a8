#include "ublk/queue.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "nbd/session.h"
#include "proto/ublk_uapi.h"
#include "ublk/io_mapping.h"
#include "ublk/mapping.h"
#include "uring/registered.h"
#include "uring/ring.h"
#include "uring/wake_batch.h"
#include "uring/sqe.h"
#include "uring/user_data.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace unbd::ublk {

namespace P = proto::ublk;
using namespace std::chrono_literals;

// ---- StartGate ---------------------------------------------------------------

void StartGate::arrive(const std::string& error) {
    std::lock_guard lock(mutex_);
    if (!error.empty() && error_.empty()) error_ = error;
    if (left_ > 0) --left_;
    cv_.notify_all();
}

bool StartGate::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return left_ == 0 || !error_.empty(); });
}

std::string StartGate::error() const {
    std::lock_guard lock(mutex_);
    return error_;
}

// ---- the loop of one queue thread -------------------------------------------

namespace {

constexpr uint8_t kKindIo = 1;    // Owner::UblkQueue: FETCH / COMMIT_AND_FETCH, value = tag
constexpr uint8_t kKindWake = 1;  // Owner::Control: the stop eventfd read

enum class TagState : uint8_t { Fetching, Serving, Aborted };

class Loop {
public:
    Loop(const QueueConfig& cfg, nbd::Connection connection, int wake_fd)
        : cfg_(cfg),
          wake_fd_(wake_fd),
          ring_(ring_options(cfg.depth)),
          buffers_(ring_, cfg.depth),
          tags_(cfg.depth, TagState::Fetching),
          requests_(cfg.depth),
          arrived_ns_(cfg.depth, 0) {
        const long page = ::sysconf(_SC_PAGESIZE);
        const std::size_t desc_bytes = cfg.depth * sizeof(P::ublksrv_io_desc);
        descs_ = Mapping((desc_bytes + page - 1) / page * page, PROT_READ, MAP_SHARED | MAP_POPULATE,
                         cfg.char_fd, static_cast<off_t>(P::io_desc_offset(cfg.q_id, page)),
                         "cannot map the ublk I/O descriptors of queue " + std::to_string(cfg.q_id));
        if (!cfg.zero_copy.zero_copy()) {
            // Copy mode: our own buffer per tag, registered at index == tag
            // when a fixed-buffer payload op uses it. UserCopy (the default)
            // does not: registering would pin depth x buffer bytes, which
            // counts against RLIMIT_MEMLOCK (8 MiB for ordinary users).
            // Not populated, and in small pages: a page is touched when a
            // request first needs it (this thread is an IO_FLUSHER, so that
            // fault never writes back through the device), and a 4K request
            // touches 4K, not a 2 MiB huge page. Populating depth x buffer
            // bytes (64 MiB a queue) made a copy-mode attach take 4x as long
            // as a zero-copy one in the benchmark guest and kept it resident;
            // huge pages moved that cost into the first requests.
            copy_buffers_ = Mapping(std::size_t{cfg.depth} * cfg.buffer_bytes, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0,
                                    "cannot allocate the queue's I/O buffers");
            ::madvise(copy_buffers_.get(), copy_buffers_.size(), MADV_NOHUGEPAGE);  // advice only
            if (cfg.zero_copy.payload != nbd::PayloadOps::UserCopy) {
                for (uint16_t tag = 0; tag < cfg.depth; ++tag)
                    check_errno(buffers_.set(tag, buffer(tag), cfg.buffer_bytes), "cannot register a copy-mode buffer");
            }
        }
        nbd::SessionOptions so;
        so.queue_depth = cfg.depth;
        so.max_request_bytes = cfg.buffer_bytes;
        so.buffer_kind = cfg.zero_copy.zero_copy() ? nbd::BufferKind::KernelOffset : nbd::BufferKind::UserAddress;
        if (!cfg.zero_copy.zero_copy()) {
            so.buffer_base = [this](uint16_t tag) { return reinterpret_cast<uint64_t>(buffer(tag)); };
        }
        so.payload_ops = cfg.zero_copy.payload;
        so.export_size = cfg.export_size;
        so.on_complete = [this](uint16_t tag, int result) { on_complete(tag, result); };
        nbd::ReconnectOptions ro = cfg.reconnect;
        if (cfg.zero_copy.zero_copy() && cfg.user_copy) {
            // USER_COPY: small READ payloads go from the session's bulk
            // buffer into the request with one pwrite (not a second recv per
            // reply); small writes into the durability log with one pread.
            so.fill_request = [this](uint16_t tag, uint32_t offset, const void* src, uint32_t length) {
                return byte_count(::pwrite(cfg_.char_fd, src, length, user_copy_pos(tag, offset)));
            };
            ro.copy_request_data = [this](uint16_t tag, void* dest, uint32_t length) {
                return byte_count(::pread(cfg_.char_fd, dest, length, user_copy_pos(tag, 0)));
            };
        }
        link_ = std::make_unique<nbd::ReconnectingSession>(ring_, std::move(connection),
                                                           std::move(so), std::move(ro));
        commits_.reserve(cfg.depth);
    }

    // Every FETCH, submitted: after this START_DEV may run.
    void fetch_all() {
        for (uint16_t tag = 0; tag < cfg_.depth; ++tag) queue_io_cmd(P::UBLK_U_IO_FETCH_REQ, tag, 0);
        arm_wake();
        check_errno(ring_.submit(), "cannot submit the ublk FETCH commands");
    }

    // Serves until stopped. A lost connection does not end it: the link
    // holds, replays or fails requests while the Redialer works.
    void serve() {
        std::optional<std::chrono::steady_clock::time_point> disc_deadline;
        for (;;) {
            const bool stopping = stop_requested_ || aborted_ == cfg_.depth;
            if (stopping && in_flight_ == 0 && !disc_deadline) {
                link_->disconnect();
                disc_deadline = std::chrono::steady_clock::now() + 2s;
            }
            link_->prepare_sqes();
            flush_commits();
            if (cfg_.counters != nullptr) cfg_.counters->set_connected(link_->connected());
            if (disc_deadline) {
                if (link_->disconnected() && link_->idle()) break;
                if (std::chrono::steady_clock::now() > *disc_deadline) {
                    spdlog::warn("queue {}: the NBD connection did not close in time", cfg_.q_id);
                    break;
                }
            }
            const long long timeout_us = disc_deadline ? 100'000 : 1'000'000;
            const int ret = batcher_.submit_and_wait(ring_, in_flight_, link_->receive_backlogged(), timeout_us,
                                                     link_->send_cqes_to_come());
            if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY) {
                throw Error(errno_text("queue " + std::to_string(cfg_.q_id) + ": io_uring wait failed", ret), -ret);
            }
            // One clock read per wake-up, not two per request: what the
            // duration histogram measures, at the loop's granularity, and
            // the batcher's round-trip estimate.
            wake_ns_ = uring::WakeBatcher::clock_ns();
            ring_.drain_cqes([&](const io_uring_cqe& cqe) { dispatch(cqe); });
            batcher_.on_wake(wake_ns_, completed_since_wake_);
            completed_since_wake_ = 0;
            if (cfg_.counters != nullptr) cfg_.counters->set_waits(batcher_.waits(), batcher_.held_waits());
        }
    }

private:
    static uring::RingOptions ring_options(uint16_t depth) {
        uring::RingOptions o;
        o.entries = std::max(64u, 2u * depth);
        o.cq_entries = 4 * o.entries;
        return o;
    }

    off_t user_copy_pos(uint16_t tag, uint32_t offset) const {
        return static_cast<off_t>(P::user_copy_offset(cfg_.q_id, tag, offset));
    }
    static int byte_count(ssize_t n) { return n < 0 ? -errno : static_cast<int>(n); }

    void* buffer(uint16_t tag) const {
        return static_cast<char*>(copy_buffers_.get()) + std::size_t{tag} * cfg_.buffer_bytes;
    }
    const P::ublksrv_io_desc& desc(uint16_t tag) const {
        return static_cast<const P::ublksrv_io_desc*>(descs_.get())[tag];
    }

    void queue_io_cmd(uint32_t op, uint16_t tag, int result) {
        io_uring_sqe* sqe = ring_.get_sqe();
        auto* cmd = static_cast<P::ublksrv_io_cmd*>(uring::prep_uring_cmd(sqe, uring::Target::plain(cfg_.char_fd), op));
        cmd->q_id = cfg_.q_id;
        cmd->tag = tag;
        cmd->result = result;
        if (cfg_.zero_copy.zero_copy()) {
            // The kernel registers the next request's pages at index == tag.
            sqe->addr = P::auto_buf_reg_to_sqe_addr(P::ublk_auto_buf_reg{tag, 0, 0, 0});
        } else {
            cmd->addr = reinterpret_cast<uint64_t>(buffer(tag));
        }
        uring::set_user_data(sqe, uring::UserData{uring::Owner::UblkQueue, 0, kKindIo, tag}.encode());
        tags_[tag] = TagState::Fetching;
    }

    void arm_wake() {
        io_uring_sqe* sqe = ring_.get_sqe();
        io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
        uring::set_user_data(sqe, uring::UserData{uring::Owner::Control, 0, kKindWake, 0}.encode());
    }

    void dispatch(const io_uring_cqe& cqe) {
        const auto ud = uring::UserData::decode(cqe.user_data);
        if (ud.owner == uring::Owner::UblkQueue && ud.kind == kKindIo) {
            on_io_cqe(static_cast<uint16_t>(ud.value), cqe.res);
        } else if (ud.owner == uring::Owner::Control && ud.kind == kKindWake) {
            stop_requested_ = true;
        } else if (!link_->handle_cqe(cqe)) {
            spdlog::debug("queue {}: stray CQE {:#x} res {}", cfg_.q_id, cqe.user_data, cqe.res);
        }
    }

    void on_io_cqe(uint16_t tag, int res) {
        if (tag >= cfg_.depth) return;
        if (res == P::UBLK_IO_RES_OK) {
            tags_[tag] = TagState::Serving;
            const Mapped m = to_block_request(desc(tag), tag, cfg_.commands);
            if (const int* err = std::get_if<int>(&m)) {
                requests_[tag] = nbd::BlockRequest{};
                commits_.push_back({tag, *err});
                if (cfg_.counters != nullptr) cfg_.counters->refused();
                return;
            }
            requests_[tag] = std::get<nbd::BlockRequest>(m);
            ++in_flight_;
            if (cfg_.counters != nullptr) {
                arrived_ns_[tag] = wake_ns_;
                cfg_.counters->started();
            }
            link_->submit(requests_[tag]);
            return;
        }
        // -ENODEV: the device is stopping; anything else: a bad command.
        if (res != P::UBLK_IO_RES_ABORT) {
            spdlog::error("queue {}: ublk I/O command for tag {} failed: {}", cfg_.q_id, tag, std::strerror(-res));
        }
        if (tags_[tag] != TagState::Aborted) {
            tags_[tag] = TagState::Aborted;
            ++aborted_;
        }
    }

    void on_complete(uint16_t tag, int result) {
        if (tag >= cfg_.depth || tags_[tag] != TagState::Serving) return;
        --in_flight_;
        ++completed_since_wake_;
        if (result < 0 && errors_logged_ < 10) {
            ++errors_logged_;
            const nbd::BlockRequest& r = requests_[tag];
            spdlog::warn("queue {}: {} offset {} length {} failed: {}", cfg_.q_id, nbd::name(r.op), r.offset,
                         r.length, std::strerror(-result));
        }
        if (cfg_.counters != nullptr) cfg_.counters->completed(requests_[tag], result, wake_ns_ - arrived_ns_[tag]);
        commits_.push_back({tag, commit_result(requests_[tag], result)});
    }

    // COMMIT_AND_FETCH outside the session's chain building, so a commit
    // never lands in the middle of a link chain.
    void flush_commits() {
        for (const auto& [tag, result] : commits_) queue_io_cmd(P::UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result);
        commits_.clear();
    }

    const QueueConfig& cfg_;
    int wake_fd_;
    uring::Ring ring_;
    uring::BufferTable buffers_;
    Mapping descs_;
    Mapping copy_buffers_;
    std::unique_ptr<nbd::ReconnectingSession> link_;
    std::vector<TagState> tags_;
    std::vector<nbd::BlockRequest> requests_;
    std::vector<std::pair<uint16_t, int>> commits_;
    std::vector<uint64_t> arrived_ns_;  // per tag: when the request was taken (wake_ns_ then)
    uint64_t wake_ns_ = 0;              // clock_ns() when the loop last woke
    uint64_t wake_value_ = 0;
    unsigned in_flight_ = 0;
    uring::WakeBatcher batcher_{ring_.has_min_wait()};
    unsigned completed_since_wake_ = 0;
    unsigned aborted_ = 0;
    bool stop_requested_ = false;
    unsigned errors_logged_ = 0;
};

}  // namespace

// ---- Queue ------------------------------------------------------------------

Queue::Queue(QueueConfig config, nbd::Connection connection)
    : config_(std::move(config)), connection_(std::move(connection)), wake_(::eventfd(0, EFD_CLOEXEC)) {
    if (!wake_) throw Error(errno_text("cannot create an eventfd", errno), errno);
}

Queue::~Queue() {
    request_stop();
    if (thread_.joinable()) thread_.join();
}

void Queue::start(StartGate& gate) {
    thread_ = std::thread([this, &gate] { run(gate); });
}

void Queue::request_stop() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void Queue::join() {
    if (thread_.joinable()) thread_.join();
}

std::string Queue::failure() const {
    std::lock_guard lock(failure_mutex_);
    return failure_;
}

void Queue::set_failure(const std::string& why) {
    std::lock_guard lock(failure_mutex_);
    if (failure_.empty()) failure_ = why;
}

void Queue::run(StartGate& gate) {
    bool arrived = false;
    try {
        // Writeback through this device must not wait on memory reclaim
        // that itself waits on this device.
        if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
            spdlog::warn("queue {}: PR_SET_IO_FLUSHER failed: {}", config_.q_id, std::strerror(errno));
        }
        // `top -H`, `ps -L` and /proc/PID/task/*/comm tell the queues apart.
        const std::string name = "unbd q" + std::to_string(config_.q_id);
        ::pthread_setname_np(::pthread_self(), name.c_str());
        Loop loop(config_, std::move(connection_), wake_.get());
        loop.fetch_all();
        gate.arrive();
        arrived = true;
        loop.serve();
    } catch (const std::exception& e) {
        const std::string why = "queue " + std::to_string(config_.q_id) + ": " + e.what();
        spdlog::error("{}", why);
        set_failure(why);
        if (!arrived) gate.arrive(why);
    }
    finished_ = true;
}

}  // namespace unbd::ublk
