// Reconnect, replay and the durability log, against real nbdkit processes
// that are killed, restarted, stopped and changed under the engine (driven
// without ublk by the synthetic frontend). libnbd is the oracle.
#include <doctest/doctest.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "integration/support/nbdkit.h"
#include "nbd/connect.h"
#include "nbd/durability_log.h"
#include "nbd/redialer.h"
#include "nbd/uri.h"

using namespace unbd;
using namespace unbd::test;
using namespace std::chrono_literals;
using nbd::BlockOp;
using nbd::BlockRequest;
using nbd::Durability;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kDisk = 16ull << 20;

struct ReconnectSetup {
    Durability durability = Durability::Replay;
    std::chrono::milliseconds io_timeout = 0ms;
    std::optional<std::chrono::milliseconds> reconnect_timeout = 30s;
    std::chrono::milliseconds connect_timeout = 2s;
    uint64_t log_bytes = 16ull << 20;
    uint16_t queue_depth = 16;
    uint32_t buffer_bytes = 256 << 10;
    nbd::PayloadOps payload_ops = nbd::PayloadOps::ReadWriteFixed;
    // The synthetic frontend's buffers are ours: the log copies every write
    // by memcpy, as the ublk queue does small ones by a USER_COPY pread; the
    // session then sends them from the log's copy, unless this is off.
    bool send_from_log = true;
    bool stepwise_sends = false;
};

// The engine as the daemon builds it: durability log, Redialer, and the
// frontend's ReconnectingSession (declared in destruction order).
struct ResilientEngine {
    std::unique_ptr<nbd::DurabilityLog> log;
    std::unique_ptr<nbd::Redialer> redialer;
    std::unique_ptr<nbd::SyntheticFrontend> fe;

    ResilientEngine(const std::string& uri, const ReconnectSetup& s) {
        const nbd::Uri u = nbd::parse_uri(uri);
        nbd::ConnectOptions co;
        co.connect_timeout = s.connect_timeout;
        co.handshake_timeout = s.connect_timeout;
        nbd::Connection c = nbd::connect_export(u, co);
        if (s.durability != Durability::TrustServer) log = std::make_unique<nbd::DurabilityLog>(s.durability, s.log_bytes);
        nbd::RedialOptions ro;
        ro.uri = u;
        ro.connect = co;
        ro.reference = c.info;
        ro.reconnect_timeout = s.reconnect_timeout;
        ro.backoff_cap = 500ms;
        redialer = std::make_unique<nbd::Redialer>(ro, log.get());
        nbd::SyntheticOptions so{.queue_depth = s.queue_depth, .buffer_bytes = s.buffer_bytes,
                                 .payload_ops = s.payload_ops, .stepwise_sends = s.stepwise_sends};
        so.reconnect.io_timeout = s.io_timeout;
        so.reconnect.send_from_log = s.send_from_log;
        so.reconnect.log = log.get();
        so.reconnect.redialer = redialer.get();
        fe = std::make_unique<nbd::SyntheticFrontend>(std::move(c.socket), c.info, so);
    }
    ~ResilientEngine() {
        fe.reset();
        redialer.reset();
    }
    int run(BlockRequest r, std::chrono::milliseconds timeout = 30s) { return fe->execute(r, timeout); }
    bool connected() { return fe->link().connected(); }
    // Steps the loop until it has a working connection again.
    bool wait_connected(std::chrono::milliseconds timeout) {
        return fe->run_until([&] { return connected(); }, timeout);
    }
};

uint64_t block_seed(uint64_t block, uint64_t version) { return block * 1000003 + version; }

}  // namespace

TEST_CASE("reconnect: nbdkit killed and restarted under load - every request completes once, data intact") {
    // Writes sent from their fixed buffer; from the log's copy (data_copy);
    // copy mode.
    for (auto [ops, from_log] : {std::pair{nbd::PayloadOps::ReadWriteFixed, false},
                                 std::pair{nbd::PayloadOps::ReadWriteFixed, true},
                                 std::pair{nbd::PayloadOps::UserCopy, false}}) {
        DiskFile disk(kDisk);  // zeros: what the version-0 blocks must read
        NbdkitProcess server({"file", disk.path});
        const std::string mode = std::string(nbd::name(ops)) + (from_log ? "+send-from-log" : "");
        CAPTURE(mode);
        ResilientEngine e(server.uri(),
                          {.queue_depth = 32, .payload_ops = ops, .send_from_log = from_log});
        const uint32_t bs = 64 << 10;
        const uint64_t blocks = kDisk / bs;
        std::vector<uint64_t> version(blocks, 0);   // the last version written and acknowledged
        std::vector<uint64_t> pending(32, 0);       // per tag: block it writes (or reads)
        std::vector<uint64_t> pending_version(32, 0);
        std::vector<bool> is_read(32, false);
        std::mt19937_64 rng(42);
        // The killer thread lives until the end: nbdkit runs with
        // --exit-with-parent, and its parent is the thread that forked it.
        std::atomic<bool> done{false}, finished{false};
        std::atomic<int> restarts{0};
        std::atomic<std::size_t> completed{0};
        std::thread killer([&] {
            while (!done && restarts < 8) {
                // Each connection gets work done before the next kill (twice
                // the queue depth of completions): a request out at 3 losses
                // in a row fails by design, and a loaded CI host must not be
                // able to make the kills outrun the reconnects.
                const std::size_t before = completed;
                std::this_thread::sleep_for(300ms);
                while (!done && completed < before + 64) std::this_thread::sleep_for(5ms);
                if (done) break;
                server.restart();
                ++restarts;
            }
            while (!finished) std::this_thread::sleep_for(10ms);
        });
        struct JoinAtEnd {
            std::atomic<bool>& flag;
            std::thread& t;
            ~JoinAtEnd() {
                flag = true;
                t.join();
            }
        } join_at_end{finished, killer};
        std::size_t completions = 0, failures = 0, bad_reads = 0;
        std::map<uint64_t, int> in_flight_blocks;  // a block is never written twice at once
        const std::size_t count = 20000;
        const bool ok = e.fe->run_batch(
            count,
            [&](std::size_t i, uint16_t tag) {
                uint64_t b;
                do b = rng() % blocks;
                while (in_flight_blocks[b] > 0);
                ++in_flight_blocks[b];
                pending[tag] = b;
                is_read[tag] = i % 3 == 2;
                if (is_read[tag])
                    return BlockRequest{.tag = tag, .op = BlockOp::Read, .offset = b * bs, .length = bs};
                pending_version[tag] = i + 1;
                fill_pattern(e.fe->buffer(tag).data(), bs, block_seed(b, i + 1));
                return BlockRequest{.tag = tag, .op = i % 50 == 0 ? BlockOp::Flush : BlockOp::Write,
                                    .offset = i % 50 == 0 ? 0 : b * bs, .length = i % 50 == 0 ? 0 : bs};
            },
            [&](std::size_t, uint16_t tag, int r) {
                ++completions;
                ++completed;
                --in_flight_blocks[pending[tag]];
                if (r < 0) {
                    ++failures;
                    return;
                }
                if (is_read[tag]) {
                    const uint64_t v = version[pending[tag]];
                    const auto* p = e.fe->buffer(tag).data();
                    if (v == 0 ? !all_zero(p, bs) : !check_pattern(p, bs, block_seed(pending[tag], v))) ++bad_reads;
                } else if (r == static_cast<int>(bs)) {
                    version[pending[tag]] = pending_version[tag];
                }
            },
            120s);
        done = true;
        REQUIRE(ok);
        CHECK(completions == count);
        CHECK(failures == 0);
        CHECK(bad_reads == 0);
        MESSAGE(mode << ": " << restarts.load() << " restarts, " << e.redialer->status().reconnects
                               << " reconnects, " << e.fe->link().stats().requests_replayed << " requests re-sent");
        CHECK(restarts.load() >= 4);
        CHECK(e.redialer->status().reconnects >= 1);
        REQUIRE(e.wait_connected(20s));
        CHECK(e.run({.op = BlockOp::Flush}) == 0);
        Oracle o(server.uri());
        std::size_t wrong = 0;
        for (uint64_t b = 0; b < blocks; ++b) {
            const auto data = o.pread(b * bs, bs);
            if (version[b] == 0 ? !all_zero(data.data(), bs) : !check_pattern(data.data(), bs, block_seed(b, version[b])))
                ++wrong;
        }
        CHECK(wrong == 0);
        e.fe->disconnect();
    }
}

TEST_CASE("reconnect: requests submitted while the server is down wait, then succeed") {
    DiskFile disk(kDisk);
    NbdkitProcess server({"file", disk.path});
    ResilientEngine e(server.uri(), {});
    REQUIRE(e.run({.op = BlockOp::Flush}) == 0);
    server.kill_now();
    // The first request after the kill finds the connection dead.
    int result = 1;
    bool completed = false;
    fill_pattern(e.fe->buffer(3).data(), 4096, 77);
    e.fe->set_on_complete([&](uint16_t, int r) {
        result = r;
        completed = true;
    });
    e.fe->submit({.tag = 3, .op = BlockOp::Write, .offset = 4096, .length = 4096});
    e.fe->run_until([&] { return completed; }, 700ms);
    CHECK_FALSE(completed);  // held, not failed
    CHECK(e.redialer->status().health == nbd::LinkHealth::Reconnecting);
    const auto t0 = Clock::now();
    server.restart();
    REQUIRE(e.fe->run_until([&] { return completed; }, 20s));
    MESSAGE("held write completed " << std::chrono::duration<double>(Clock::now() - t0).count()
                                    << " s after the server came back");
    CHECK(result == 4096);
    CHECK(e.redialer->status().health == nbd::LinkHealth::Connected);
    Oracle o(server.uri());
    const auto data = o.pread(4096, 4096);
    CHECK(check_pattern(data.data(), 4096, 77));
}

namespace {

// Writes `n` 4K blocks through the engine (acknowledged, never flushed),
// kills the cache-filter nbdkit (its writeback cache dies with it),
// restarts it, makes the engine reconnect with one READ, and returns how
// many of the blocks the server really has afterwards.
std::size_t survivors_after_cache_loss(Durability mode, std::size_t n, int* flush_result) {
    DiskFile disk(kDisk);
    NbdkitProcess server({"--filter=cache", "file", disk.path, "cache=writeback"});
    ResilientEngine e(server.uri(), {.durability = mode});
    for (std::size_t i = 0; i < n; ++i) {
        fill_pattern(e.fe->buffer(0).data(), 4096, 500 + i);
        REQUIRE(e.run({.op = BlockOp::Write, .offset = i * 8192, .length = 4096}) == 4096);
    }
    server.restart();
    REQUIRE(e.run({.op = BlockOp::Read, .offset = 0, .length = 4096}) == 4096);
    *flush_result = e.run({.op = BlockOp::Flush});
    Oracle o(server.uri());
    std::size_t good = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto data = o.pread(i * 8192, 4096);
        if (check_pattern(data.data(), 4096, 500 + i)) ++good;
    }
    return good;
}

}  // namespace

TEST_CASE("durability: a server that loses its writeback cache gets the acknowledged writes back") {
    int flush = 1;
    const std::size_t n = 64;
    // trust-server first: proves that this server really loses acknowledged
    // writes when killed, which is what makes the log matter.
    const std::size_t lost_case = survivors_after_cache_loss(Durability::TrustServer, n, &flush);
    MESSAGE("trust-server: " << lost_case << " of " << n << " acknowledged writes survived the server's restart");
    CHECK(lost_case < n);
    CHECK(flush == 0);  // and nobody is told

    const std::size_t replay_case = survivors_after_cache_loss(Durability::Replay, n, &flush);
    MESSAGE("replay: " << replay_case << " of " << n << " survived");
    CHECK(replay_case == n);
    CHECK(flush == 0);

    survivors_after_cache_loss(Durability::FailFlush, n, &flush);
    CHECK(flush == -EIO);  // the filesystem learns the truth
}

TEST_CASE("durability: a full log flushes on its own and nothing waits forever") {
    DiskFile disk(kDisk);
    NbdkitProcess server({"--filter=cache", "file", disk.path, "cache=writeback"});
    // 1 MiB of log for 4 MiB of writes: four rounds of our own FLUSH at least.
    ResilientEngine e(server.uri(), {.log_bytes = 1 << 20, .queue_depth = 8, .buffer_bytes = 64 << 10});
    std::size_t good = 0;
    REQUIRE(e.fe->run_batch(
        64,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(e.fe->buffer(tag).data(), 64 << 10, 900 + i);
            return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * (64 << 10), .length = 64 << 10};
        },
        [&](std::size_t, uint16_t, int r) { good += r == (64 << 10); }, 60s));
    CHECK(good == 64);
    CHECK(e.fe->link().stats().own_flushes >= 3);
    const auto st = e.log->stats();
    CHECK(st.bytes <= (1u << 20));
    CHECK(st.full_events > 0);
    MESSAGE(e.fe->link().stats().own_flushes << " FLUSHes of our own, " << st.entries << " entries left in the log");
    // Whatever is still unflushed is replayed after a loss.
    server.restart();
    REQUIRE(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
    Oracle o(server.uri());
    for (std::size_t i = 0; i < 64; ++i) {
        const auto data = o.pread(i * (64 << 10), 64 << 10);
        REQUIRE_MESSAGE(check_pattern(data.data(), 64 << 10, 900 + i), "block " << i);
    }
}

TEST_CASE("io timeout: a stopped server is declared dead - the hold is bounded - it works again after SIGCONT") {
    NbdkitProcess server({"memory", "16M"});
    ResilientEngine e(server.uri(), {.io_timeout = 1000ms, .reconnect_timeout = 3000ms, .connect_timeout = 1000ms});
    REQUIRE(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
    server.pause();
    const auto t0 = Clock::now();
    const int r = e.run({.op = BlockOp::Read, .length = 4096}, 30s);
    const double held = std::chrono::duration<double>(Clock::now() - t0).count();
    MESSAGE("READ against a stopped server failed with " << r << " after " << held << " s "
                                                          << "(io timeout 1 s, reconnect timeout 3 s)");
    CHECK(r == -EIO);
    CHECK(held >= 2.9);   // io timeout, then held for the reconnect timeout
    CHECK(held < 6.5);    // + one loop tick and scheduling slack
    CHECK(e.redialer->status().health == nbd::LinkHealth::Disconnected);
    CHECK(e.fe->link().failure_reason().find("no reply") != std::string::npos);
    // Failing fast now, not holding again.
    const auto t1 = Clock::now();
    CHECK(e.run({.op = BlockOp::Read, .length = 4096}) == -EIO);
    CHECK(Clock::now() - t1 < 1500ms);
    server.resume();
    REQUIRE(e.wait_connected(20s));
    CHECK(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
    CHECK(e.redialer->status().health == nbd::LinkHealth::Connected);
    // A second stall: the same again, and the state says so.
    server.pause();
    CHECK(e.run({.op = BlockOp::Read, .length = 4096}, 30s) == -EIO);
    CHECK(e.redialer->status().health == nbd::LinkHealth::Disconnected);
    server.resume();
    REQUIRE(e.wait_connected(20s));
    CHECK(e.redialer->status().reconnects == 2);
}

TEST_CASE("reconnect: an export that changed unsafely fails I/O and says what changed") {
    NbdkitProcess server({"memory", "16M"});
    ResilientEngine e(server.uri(), {.reconnect_timeout = 60s});
    REQUIRE(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
    struct Case {
        std::vector<std::string> args;
        const char* says;
    } cases[] = {{{"memory", "8M"}, "the export shrank from 16 MiB to 8 MiB"},
                 {{"-r", "memory", "16M"}, "read-only now"}};
    for (const auto& c : cases) {
        const std::string says = c.says;
        CAPTURE(says);
        server.restart(c.args);
        const auto t0 = Clock::now();
        CHECK(e.run({.op = BlockOp::Read, .length = 4096}) == -EIO);
        CHECK(Clock::now() - t0 < 10s);  // not held for the 60 s reconnect timeout
        // The Redialer keeps trying (backoff), and says what it found.
        const auto says_it = [&] { return e.redialer->status().last_failure.find(c.says) != std::string::npos; };
        CHECK(e.fe->run_until(says_it, 10s));
        MESSAGE(e.redialer->status().last_failure);
        CHECK(e.redialer->status().health == nbd::LinkHealth::Disconnected);
    }
    // The export as it was: the device works again.
    server.restart(std::vector<std::string>{"memory", "32M"});  // grown is fine
    REQUIRE(e.wait_connected(20s));
    CHECK(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
}

TEST_CASE("durability: disconnecting flushes what the log holds first (detach, daemon hand-over)") {
    DiskFile disk(kDisk);
    NbdkitProcess server({"--filter=cache", "file", disk.path, "cache=writeback"});
    {
        ResilientEngine e(server.uri(), {});
        for (std::size_t i = 0; i < 16; ++i) {
            fill_pattern(e.fe->buffer(0).data(), 4096, 700 + i);
            REQUIRE(e.run({.op = BlockOp::Write, .offset = i * 4096, .length = 4096}) == 4096);
        }
        CHECK(e.log->has_unflushed());
        REQUIRE(e.fe->disconnect());
        CHECK_FALSE(e.log->has_unflushed());
        CHECK(e.fe->link().stats().own_flushes == 1);
    }
    server.restart();  // the writeback cache is gone; the file must have it all
    Oracle o(server.uri());
    for (std::size_t i = 0; i < 16; ++i) {
        const auto data = o.pread(i * 4096, 4096);
        CHECK_MESSAGE(check_pattern(data.data(), 4096, 700 + i), "block " << i);
    }
}

TEST_CASE("reconnect: an idle connection notices the server went away, and comes back without I/O") {
    DiskFile disk(kDisk);
    NbdkitProcess server({"file", disk.path});
    ResilientEngine e(server.uri(), {});
    REQUIRE(e.run({.op = BlockOp::Flush}) == 0);
    server.kill_now();
    const auto t0 = Clock::now();
    CHECK(e.fe->run_until([&] { return !e.connected(); }, 5s));
    MESSAGE("idle loss noticed after " << std::chrono::duration<double>(Clock::now() - t0).count() << " s");
    CHECK(e.redialer->status().health == nbd::LinkHealth::Reconnecting);
    server.restart();
    CHECK(e.wait_connected(10s));
    CHECK(e.redialer->status().reconnects == 1);
    CHECK(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
}

TEST_CASE("io timeout: a request the server never answers fails with EIO after 3 lost connections - others go on") {
    // nbdkit answers every READ but the one at 8 MiB, which it never answers
    // (parallel: the other requests are not held up behind it).
    NbdkitProcess server({"eval", "thread_model=echo parallel", "get_size=echo 16777216",
                          "pread=if [ $4 = 8388608 ]; then sleep 60; fi; head -c $3 /dev/zero"});
    ResilientEngine e(server.uri(), {.io_timeout = 500ms, .reconnect_timeout = 30s, .connect_timeout = 1000ms});
    REQUIRE(e.run({.op = BlockOp::Read, .length = 4096}) == 4096);
    const auto t0 = Clock::now();
    const int r = e.run({.op = BlockOp::Read, .offset = 8ull << 20, .length = 4096}, 30s);
    const double held = std::chrono::duration<double>(Clock::now() - t0).count();
    MESSAGE("the unanswered READ ended with " << r << " after " << held << " s and "
                                              << e.redialer->status().reconnects << " reconnects");
    // Without the limit it is re-sent on every new connection, for ever
    // (the reconnect timeout only bounds the time without a connection).
    CHECK(r == -EIO);
    CHECK(held >= 1.4);  // three io timeouts of 0.5 s
    CHECK(held < 10);
    CHECK(e.redialer->status().reconnects >= 2);
    // The connection is fine for everything else.
    REQUIRE(e.wait_connected(20s));
    CHECK(e.run({.op = BlockOp::Read, .offset = 4096, .length = 4096}) == 4096);
}

// SEND_ZC on a Unix socket: the kernel refuses it (EOPNOTSUPP) on every
// version, so a write's payload send fails on each connection. That is our
// own op, not the server: the write fails at once, it is not re-sent on
// kLossesBeforeFailing new connections. Reads (READ_FIXED) keep working.
TEST_CASE("reconnect: an op the kernel refuses fails its request at once, not after 3 reconnects") {
    NbdkitProcess server({"memory", "16M"});
    // send_from_log off: the write must take the SEND_ZC the kernel refuses.
    ResilientEngine e(server.uri(),
                      {.reconnect_timeout = 30s, .payload_ops = nbd::PayloadOps::SendZcFixed, .send_from_log = false});
    const int r = e.run({.op = BlockOp::Write, .offset = 0, .length = 4096}, 10s);
    MESSAGE("write: " << r << " after " << e.redialer->status().reconnects << " reconnects; "
                      << e.fe->link().stats().connections_lost << " connections lost");
    CHECK(r == -EIO);
    CHECK(e.fe->link().stats().connections_lost == 1);
    REQUIRE(e.wait_connected(20s));
    CHECK(e.run({.op = BlockOp::Read, .offset = 0, .length = 4096}) == 4096);
}

namespace {

struct SendStats {
    uint64_t sqes = 0, commands = 0;
};

// 256 4K writes at QD32 through the engine, each copied into the log;
// every `fua_every`-th is FUA (stable once acknowledged: not logged, no
// data_copy, so its chain takes the fixed-buffer sends). Checks every byte
// with libnbd.
SendStats write_through_log(bool stepwise, bool send_from_log, std::size_t fua_every) {
    CAPTURE(stepwise);
    CAPTURE(send_from_log);
    CAPTURE(fua_every);
    NbdkitProcess server({"memory", "64M"});
    ResilientEngine e(server.uri(), {.queue_depth = 32,
                                     .send_from_log = send_from_log,
                                     .stepwise_sends = stepwise});
    constexpr std::size_t kCount = 256;
    constexpr uint32_t kSize = 4096;
    std::size_t ok = 0;
    REQUIRE(e.fe->run_batch(
        kCount,
        [&](std::size_t i, uint16_t tag) {
            fill_pattern(e.fe->buffer(tag).data(), kSize, 3000 + i);
            return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * kSize, .length = kSize,
                                .fua = fua_every != 0 && i % fua_every == 0};
        },
        [&](std::size_t, uint16_t, int r) { ok += r == static_cast<int>(kSize); }));
    CHECK(ok == kCount);
    CAPTURE(e.fe->session().failure_reason());
    CHECK_FALSE(e.fe->session().failed());
    Oracle o(server.uri());
    const auto d = o.pread(0, kCount * kSize);
    for (std::size_t i = 0; i < kCount; ++i)
        REQUIRE_MESSAGE(check_pattern(d.data() + i * kSize, kSize, 3000 + i), "write " << i);
    const auto& st = e.fe->session().stats();
    MESSAGE("stepwise " << stepwise << ", send_from_log " << send_from_log << ", FUA every " << fua_every
                        << ": " << st.send_sqes << " send SQEs in " << st.chains << " chains for " << st.commands
                        << " commands");
    return {st.send_sqes, st.commands};
}

}  // namespace

// kTLS sends stepwise, one SQE per trip through the ring: a 4K write's
// header and payload were two trips. With the data already in the log
// (USER_COPY pread), a whole chain goes as one SENDMSG instead.
TEST_CASE("durability: small writes go out from the log's copy, one SENDMSG per chain") {
    for (bool stepwise : {true, false}) {
        const SendStats from_log = write_through_log(stepwise, true, 0);
        const SendStats from_buffer = write_through_log(stepwise, false, 0);
        // One SQE per chain, however many writes it carries; from the
        // buffer, at least a header and a payload SQE per write.
        CHECK(from_log.sqes <= from_log.commands);
        CHECK(from_buffer.sqes >= 2 * from_buffer.commands);
        // FUA writes (not logged) between them: their chains take the
        // fixed-buffer sends, the stream stays whole.
        const SendStats mixed = write_through_log(stepwise, true, 7);
        CHECK(mixed.sqes > from_log.sqes);
    }
}
