// A misbehaving server must never crash or hang the engine: each case is a
// protocol error (session failed, clear reason) or the right errno, and
// every request submitted is accounted for exactly once.
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>

#include "common/error.h"
#include "integration/support/hostile_server.h"
#include "integration/support/nbdkit.h"

using namespace unbd;
using namespace unbd::test;
using namespace std::chrono_literals;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {

constexpr uint16_t kFlags = proto::kFlagHasFlags | proto::kFlagSendFlush;

struct Outcome {
    std::vector<int> results;
    bool finished = false;
    bool failed = false;
    std::string reason;
};

// Runs `count` 4 KiB requests of `op` at depth `count` against the server.
Outcome run(HostileServer& server, BlockOp op, std::size_t count) {
    auto fe = connect_engine(server.uri(), {.queue_depth = static_cast<uint16_t>(count), .buffer_bytes = 65536});
    Outcome o;
    o.results.assign(count, 1);
    o.finished = fe->run_batch(
        count,
        [&](std::size_t i, uint16_t tag) {
            return BlockRequest{.tag = tag, .op = op, .offset = i * 4096, .length = 4096};
        },
        [&](std::size_t i, uint16_t, int r) { o.results[i] = r; }, 5s);
    o.failed = fe->session().failed();
    o.reason = fe->session().failure_reason();
    return o;
}

void expect_protocol_error(const Outcome& o, const std::string& words) {
    CHECK(o.finished);  // no hang: every request completed
    CHECK(o.failed);
    CHECK_MESSAGE(o.reason.find(words) != std::string::npos, o.reason);
    for (int r : o.results) CHECK((r == 4096 || r == -EIO));
}

}  // namespace

TEST_CASE("engine vs hostile server: bad reply magic") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        if (!c.read_request()) return;
        const unsigned char junk[16] = {0xde, 0xad, 0xbe, 0xef};
        c.send_raw(junk, sizeof junk);
        while (c.read_request()) {}
    });
    auto o = run(server, BlockOp::Write, 1);
    expect_protocol_error(o, "bad reply magic");
    CHECK(o.results[0] == -EIO);
}

TEST_CASE("engine vs hostile server: structured reply that was never negotiated") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto r = c.read_request();
        if (!r) return;
        std::byte hdr[20]{};
        proto::store_be<uint32_t>(hdr, proto::kStructuredReplyMagic);
        proto::store_be<uint64_t>(hdr + 8, r->cookie);
        c.send_raw(hdr, sizeof hdr);
        while (c.read_request()) {}
    });
    expect_protocol_error(run(server, BlockOp::Read, 1), "structured reply");
}

TEST_CASE("engine vs hostile server: unknown cookie (stale generation)") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto r = c.read_request();
        if (!r) return;
        c.send_reply(0, r->cookie ^ (uint64_t{1} << 40));
        while (c.read_request()) {}
    });
    auto o = run(server, BlockOp::Write, 1);
    expect_protocol_error(o, "answers no request in flight");
    CHECK(o.results[0] == -EIO);
}

TEST_CASE("engine vs hostile server: duplicate reply") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto a = c.read_request();
        auto b = c.read_request();
        if (!a || !b) return;
        c.send_reply(0, a->cookie);
        c.send_reply(0, a->cookie);
        while (c.read_request()) {}
    });
    auto o = run(server, BlockOp::Write, 2);
    expect_protocol_error(o, "protocol error");
    CHECK(o.results[0] == 4096);  // answered once, correctly
    CHECK(o.results[1] == -EIO);  // never answered
}

TEST_CASE("engine vs hostile server: reply to a request never sent") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto r = c.read_request();
        if (!r) return;
        c.send_reply(0, r->cookie + 3);  // the tag next door, which is idle
        while (c.read_request()) {}
    });
    auto o = run(server, BlockOp::Write, 1);
    expect_protocol_error(o, "names no request");
}

TEST_CASE("engine vs hostile server: connection closed in the middle of a READ payload") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto r = c.read_request();
        if (!r) return;
        std::vector<std::byte> partial(100);
        c.send_reply(0, r->cookie, partial.data(), partial.size());
    });
    auto o = run(server, BlockOp::Read, 4);
    expect_protocol_error(o, "middle of a READ payload");
    for (int r : o.results) CHECK(r == -EIO);
}

TEST_CASE("engine vs hostile server: connection closed with requests in flight") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        c.read_request();
        c.read_request();
    });
    auto o = run(server, BlockOp::Write, 8);
    expect_protocol_error(o, "closed the connection");
    for (int r : o.results) CHECK(r == -EIO);
}

TEST_CASE("engine vs hostile server: error code outside the spec becomes EINVAL, session lives on") {
    HostileServer server(1 << 20, kFlags, [](ServerConn& c) {
        auto r = c.read_request();
        if (!r) return;
        c.send_reply(0x12345, r->cookie);
        while ((r = c.read_request())) {
            if (r->type == proto::Cmd::Disc) return;
            c.send_reply(r->type == proto::Cmd::Flush ? proto::kENOSPC : 0, r->cookie);
        }
    });
    auto fe = connect_engine(server.uri(), {.queue_depth = 2, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096}) == -EINVAL);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096}) == 4096);
    CHECK(fe->execute({.op = BlockOp::Flush}) == -ENOSPC);
    CHECK_FALSE(fe->session().failed());
    CHECK(fe->disconnect());
}

TEST_CASE("engine vs hostile server: an export size above 2^63-1 is refused before any I/O") {
    // No engine can be made for it: offsets past 2^63-1 exist for no block
    // device (and wrap in signed arithmetic). The EXPORT_NAME path is the
    // handshake unit tests' job; GO is what this server speaks.
    for (const uint64_t size : {(uint64_t{1} << 63), ~uint64_t{0}}) {
        HostileServer server(size, kFlags, [](ServerConn& c) { c.read_request(); });
        try {
            connect_engine(server.uri());
            FAIL("connected to an export of " << size << " bytes");
        } catch (const Error& e) {
            CHECK_MESSAGE(std::string(e.what()).find("more than the 2^63-1") != std::string::npos, e.what());
            CHECK(e.error_number() == EPROTO);
        }
    }
}
