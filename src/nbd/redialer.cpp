#include "nbd/redialer.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "nbd/export_compat.h"
#include "nbd/replay.h"

namespace unbd::nbd {

using namespace std::chrono_literals;

const char* name(LinkHealth h) {
    switch (h) {
        case LinkHealth::Connected: return "connected";
        case LinkHealth::Reconnecting: return "reconnecting";
        case LinkHealth::Disconnected: return "disconnected";
    }
    return "?";
}

namespace {
double seconds_since(Redialer::Clock::time_point t) {
    return std::chrono::duration<double>(Redialer::Clock::now() - t).count();
}
}  // namespace

Redialer::Redialer(RedialOptions options, DurabilityLog* log)
    : options_(std::move(options)), log_(log), boxes_(options_.connections),
      export_size_seen_(options_.reference.size) {
    for (auto& b : boxes_) {
        b.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!b.wake) throw Error(errno_text("cannot create an eventfd", errno), errno);
    }
    thread_ = std::thread([this] { run(); });
}

Redialer::~Redialer() {
    stop();
    if (thread_.joinable()) thread_.join();
}

void Redialer::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    fail_now_ = true;
    cv_.notify_all();
}

void Redialer::wake(unsigned i) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(boxes_[i].wake.get(), &one, sizeof one);
}

void Redialer::lost(unsigned i, const std::string& why) {
    std::lock_guard lock(mutex_);
    if (outage_ || stop_) return;  // the others were told to drop: their "why" is ours
    last_failure_ = why;
    outage_ = true;
    outage_start_ = Clock::now().time_since_epoch().count();
    for (unsigned j = 0; j < boxes_.size(); ++j) {
        if (j == i || boxes_[j].parked) continue;
        boxes_[j].drop = true;
        wake(j);
    }
    cv_.notify_all();
}

void Redialer::renegotiate() {
    std::lock_guard lock(mutex_);
    if (outage_ || stop_) return;
    outage_ = true;
    planned_ = true;
    outage_start_ = Clock::now().time_since_epoch().count();
    for (unsigned j = 0; j < boxes_.size(); ++j) {
        if (boxes_[j].parked) continue;
        boxes_[j].drop = true;
        wake(j);
    }
    cv_.notify_all();
}

void Redialer::parked(unsigned i) {
    std::lock_guard lock(mutex_);
    boxes_[i].parked = true;
    boxes_[i].drop = false;
    cv_.notify_all();
}

Redialer::Order Redialer::poll(unsigned i) {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(boxes_[i].wake.get(), &v, sizeof v);
    std::lock_guard lock(mutex_);
    Order o;
    o.drop = std::exchange(boxes_[i].drop, false);
    o.planned = planned_;
    if (boxes_[i].connection) {
        o.connection = std::move(boxes_[i].connection);
        boxes_[i].connection.reset();
        boxes_[i].parked = false;
    }
    return o;
}

bool Redialer::failing(Clock::time_point now) const {
    if (fail_now_) return true;
    const int64_t start = outage_start_;
    if (start == 0 || !options_.reconnect_timeout) return false;
    return now - Clock::time_point(Clock::duration(start)) >= *options_.reconnect_timeout;
}

RedialStatus Redialer::status() const {
    RedialStatus s;
    {
        std::lock_guard lock(mutex_);
        s.reconnects = reconnects_;
        s.export_size = export_size_seen_;
        s.connected_times = connected_times_;
        s.last_failure = last_failure_;
        s.health = outage_ ? LinkHealth::Reconnecting : LinkHealth::Connected;
    }
    if (s.health == LinkHealth::Reconnecting && failing(Clock::now())) s.health = LinkHealth::Disconnected;
    return s;
}

bool Redialer::wait_all_parked() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] {
        return stop_ || std::all_of(boxes_.begin(), boxes_.end(), [](const Mailbox& b) { return b.parked; });
    });
    return !stop_;
}

// Connects every connection and checks each export against the device's.
std::vector<Connection> Redialer::connect_all() {
    std::vector<Connection> conns;
    ExportInfo reference = options_.reference;
    if (options_.export_size) reference.size = options_.export_size->load();
    for (unsigned i = 0; i < options_.connections; ++i) {
        conns.push_back(connect_export(options_.uri, options_.connect));
        const ExportChange c = compare_exports(reference, conns.back().info, options_.connections > 1);
        if (!c.unsafe.empty()) {
            fail_now_ = true;  // held I/O cannot go anywhere: fail it now
            throw Error("cannot resume " + options_.uri.to_string() + ": " + c.unsafe +
                        " (the device's I/O fails until the export is back as it was)");
        }
        if (!c.note.empty() && i == 0) spdlog::warn("{}: {}", options_.uri.to_string(), c.note);
    }
    std::lock_guard lock(mutex_);
    export_size_seen_ = conns.front().info.size;
    return conns;
}

// Before anyone else writes on the new connections: what the old server
// acknowledged but may have lost goes back, then a FLUSH makes it stable.
void Redialer::restore_durability(Connection& first) {
    if (!log_) return;
    uint64_t mark = 0;
    if (log_->mode() == Durability::FailFlush) {
        if (log_->has_unflushed()) {
            log_->poison_next_flush();
            spdlog::warn("acknowledged writes since the last FLUSH may be lost (--durability=fail-flush): "
                         "the next FLUSH fails");
        }
        log_->flushed(log_->flush_mark());
        return;
    }
    const auto entries = log_->unflushed(&mark);
    if (entries.empty()) return;
    const auto t0 = Clock::now();
    const ReplayResult r = replay_log(first.socket.get(), *log_, entries, options_.reference, options_.replay_timeout);
    log_->flushed(mark);
    spdlog::info("replayed {} unflushed writes ({} bytes, {} commands) and flushed, in {:.3f} s", entries.size(),
                 r.bytes, r.commands, seconds_since(t0));
}

bool Redialer::sleep_backoff(unsigned attempt) {
    auto delay = attempt == 0 ? 0ms : std::min<std::chrono::milliseconds>(250ms * (1u << std::min(attempt - 1, 8u)),
                                                                           options_.backoff_cap);
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, delay, [&] { return stop_; });
}

void Redialer::run() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || outage_; });
            if (stop_) return;
        }
        const auto began = Clock::time_point(Clock::duration(outage_start_.load()));
        if (!wait_all_parked()) return;
        for (unsigned attempt = 0;; ++attempt) {
            if (!sleep_backoff(attempt)) return;
            try {
                std::vector<Connection> conns = connect_all();
                restore_durability(conns.front());
                std::lock_guard lock(mutex_);
                if (stop_) return;
                for (unsigned i = 0; i < boxes_.size(); ++i) {
                    boxes_[i].connection = std::move(conns[i]);
                    wake(i);
                }
                outage_ = false;
                outage_start_ = 0;
                fail_now_ = false;
                ++connected_times_;
                if (!std::exchange(planned_, false)) ++reconnects_;
                spdlog::info("{}: reconnected {} connection(s) after {:.3f} s ({} attempts)", options_.uri.to_string(),
                             boxes_.size(), seconds_since(began), attempt + 1);
                break;
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex_);
                if (last_failure_ != e.what() || attempt % 16 == 0)
                    spdlog::warn("reconnect attempt {} failed: {}", attempt + 1, e.what());
                last_failure_ = e.what();
            }
        }
    }
}

}  // namespace unbd::nbd
