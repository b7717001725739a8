// Redialer: brings a device's connections back after a loss. One per
// device; its own thread does every blocking step (connect, handshake,
// replay), so a queue thread never waits on the network.
//
// Contract with the queues (ReconnectingSession, one per connection i):
//   lost(i, why)   connection i failed. The first loss starts an outage:
//                  every other connection is told to drop too (through its
//                  wake fd and poll()), because a server that restarted
//                  lost them all, and the log must be replayed while no
//                  connection can write.
//   parked(i)      connection i is closed, its unfinished requests parked
//                  and every acknowledged write is in the log.
//   poll(i)        after wake_fd(i) fired: drop the connection, or take a
//                  new one (then re-send the parked requests in order).
//   renegotiate()  a planned outage: every connection is dropped and made
//                  again, to learn what only a handshake says (a resized
//                  export: a connection keeps the size it negotiated).
// Once every connection is parked the thread reconnects all of them, with
// backoff (at once, then 0.25 s doubling to the cap), checks each export
// against the device's (export_compat.h), replays the durability log over
// the first one and FLUSHes, and only then hands them out.
//
// Holding: from the start of an outage, I/O is held for reconnect_timeout;
// after it (or at once when the export changed unsafely) failing() is true
// and the queues fail held and new requests with EIO, while attempts go on.
//
// Lifetime: constructed before the queues, destroyed after they joined.
// stop() (or the destructor) ends the thread; a connect attempt in progress
// is bounded by ConnectOptions' timeouts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "nbd/connect.h"
#include "nbd/durability_log.h"
#include "nbd/export_info.h"
#include "nbd/uri.h"

namespace unbd::nbd {

struct RedialOptions {
    Uri uri;
    ConnectOptions connect;
    unsigned connections = 1;
    ExportInfo reference;  // what the device was made from
    const std::atomic<uint64_t>* export_size = nullptr;  // the device's size now (resize), if it can change
    // Holding I/O while reconnecting: 0 = fail at once; nullopt = forever.
    std::optional<std::chrono::milliseconds> reconnect_timeout = std::chrono::seconds(300);
    std::chrono::milliseconds replay_timeout{30'000};
    // Attempts: at once, then 0.25 s doubling to this. A refused or missing
    // socket costs nothing to retry; a restarted server is back within it.
    std::chrono::milliseconds backoff_cap{2'000};
};

enum class LinkHealth : uint8_t { Connected, Reconnecting, Disconnected };
const char* name(LinkHealth h);

struct RedialStatus {
    LinkHealth health = LinkHealth::Connected;
    uint64_t reconnects = 0;
    std::string last_failure;  // one line; "" when nothing failed yet
    uint64_t export_size = 0;  // as the last (re)connection's handshake said
    uint64_t connected_times = 0;  // successful (re)connections, renegotiations included
};

class Redialer {
public:
    using Clock = std::chrono::steady_clock;

    Redialer(RedialOptions options, DurabilityLog* log);
    ~Redialer();
    Redialer(const Redialer&) = delete;
    Redialer& operator=(const Redialer&) = delete;

    // Ends the thread; afterwards failing() is true (shutdown must not wait
    // for a server that is gone).
    void stop();

    int wake_fd(unsigned i) const { return boxes_[i].wake.get(); }
    void lost(unsigned i, const std::string& why);
    void renegotiate();
    void parked(unsigned i);
    struct Order {
        bool drop = false;
        bool planned = false;  // the drop is a renegotiation, not a failure
        std::optional<Connection> connection;
    };
    Order poll(unsigned i);

    // True while held I/O must fail instead of waiting.
    bool failing(Clock::time_point now) const;
    RedialStatus status() const;

private:
    struct Mailbox {
        Fd wake;  // eventfd
        bool drop = false;
        bool parked = false;
        std::optional<Connection> connection;
    };
    void run();
    void wake(unsigned i);  // locked
    bool wait_all_parked();
    std::vector<Connection> connect_all();
    void restore_durability(Connection& first);
    bool sleep_backoff(unsigned attempt);

    const RedialOptions options_;
    DurabilityLog* const log_;
    std::vector<Mailbox> boxes_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool outage_ = false;
    std::string last_failure_;
    uint64_t reconnects_ = 0;
    uint64_t export_size_seen_ = 0;
    uint64_t connected_times_ = 0;
    bool planned_ = false;  // the current outage is a renegotiation
    std::atomic<bool> fail_now_{false};                 // export changed, or stopped
    std::atomic<int64_t> outage_start_{0};              // Clock ticks; 0 = none
    std::thread thread_;
};

}  // namespace unbd::nbd
