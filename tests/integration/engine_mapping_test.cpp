// What the engine puts on the wire for flags and commands the server did or
// did not advertise, observed by a small recording server.
#include <doctest/doctest.h>

#include <cerrno>
#include <mutex>

#include "integration/support/hostile_server.h"
#include "integration/support/nbdkit.h"

using namespace unbd;
using namespace unbd::test;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {

struct Seen {
    std::mutex m;
    std::vector<proto::Request> requests;
};

// A correct server that records every request and answers it with success
// (READ payload: zeros).
HostileServer::Scenario recording(Seen& seen) {
    return [&seen](ServerConn& c) {
        while (auto r = c.read_request()) {
            {
                std::lock_guard lock(seen.m);
                seen.requests.push_back(*r);
            }
            if (r->type == proto::Cmd::Disc) return;
            std::vector<std::byte> zeros(r->type == proto::Cmd::Read ? r->length : 0);
            c.send_reply(0, r->cookie, zeros.data(), zeros.size());
        }
    };
}

}  // namespace

TEST_CASE("engine: FUA without SEND_FUA becomes WRITE, then FLUSH after its reply") {
    Seen seen;
    HostileServer server(1 << 20, proto::kFlagHasFlags | proto::kFlagSendFlush, recording(seen));
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 4096, .length = 8192, .fua = true}) == 8192);
    CHECK(fe->disconnect());
    fe.reset();
    server.join();
    std::lock_guard lock(seen.m);
    REQUIRE(seen.requests.size() == 3);
    CHECK(seen.requests[0].type == proto::Cmd::Write);
    CHECK(seen.requests[0].flags == 0);
    CHECK(seen.requests[1].type == proto::Cmd::Flush);
    CHECK(seen.requests[2].type == proto::Cmd::Disc);
}

TEST_CASE("engine: FUA with SEND_FUA is one flagged WRITE - NO_HOLE goes on WRITE_ZEROES") {
    Seen seen;
    HostileServer server(1 << 20,
                         proto::kFlagHasFlags | proto::kFlagSendFlush | proto::kFlagSendFua |
                             proto::kFlagSendWriteZeroes,
                         recording(seen));
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096, .fua = true}) == 4096);
    CHECK(fe->execute({.op = BlockOp::WriteZeroes, .offset = 0, .length = 65536, .no_hole = true}) == 65536);
    CHECK(fe->disconnect());
    fe.reset();
    server.join();
    std::lock_guard lock(seen.m);
    REQUIRE(seen.requests.size() == 3);
    CHECK(seen.requests[0].flags == proto::kCmdFlagFua);
    CHECK(seen.requests[1].type == proto::Cmd::WriteZeroes);
    CHECK(seen.requests[1].flags == proto::kCmdFlagNoHole);
}

TEST_CASE("engine: nothing the server did not advertise is sent") {
    Seen seen;
    HostileServer server(1 << 20, proto::kFlagHasFlags, recording(seen));
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Flush}) == 0);  // no write cache: nothing to flush
    CHECK(fe->execute({.op = BlockOp::Trim, .offset = 0, .length = 4096}) == -EOPNOTSUPP);
    CHECK(fe->execute({.op = BlockOp::WriteZeroes, .offset = 0, .length = 4096}) == -EOPNOTSUPP);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096, .fua = true}) == 4096);
    CHECK(fe->disconnect());
    fe.reset();
    server.join();
    std::lock_guard lock(seen.m);
    REQUIRE(seen.requests.size() == 2);
    CHECK(seen.requests[0].type == proto::Cmd::Write);
    CHECK(seen.requests[0].flags == 0);
    CHECK(seen.requests[1].type == proto::Cmd::Disc);
}

TEST_CASE("engine: a read-only export refuses writes without sending them") {
    Seen seen;
    HostileServer server(1 << 20, proto::kFlagHasFlags | proto::kFlagReadOnly | proto::kFlagSendTrim, recording(seen));
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 4096}) == -EROFS);
    CHECK(fe->execute({.op = BlockOp::Trim, .offset = 0, .length = 4096}) == -EROFS);
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 0, .length = 4096}) == 4096);
    CHECK(fe->disconnect());
    fe.reset();
    server.join();
    std::lock_guard lock(seen.m);
    REQUIRE(seen.requests.size() == 2);
    CHECK(seen.requests[0].type == proto::Cmd::Read);
}
