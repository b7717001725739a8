// The engine over TLS (user space: the TlsTunnel's socketpair) against
// nbdkit --tls=require, with a PSK over a Unix socket and x509 (client
// certificates checked) over TCP: writes and reads of every size class at
// several depths, checked with libnbd over its own TLS connection; and a
// reconnect, which must redo the TLS handshake.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "integration/support/nbdkit.h"
#include "integration/support/tls_server.h"
#include "nbd/connect.h"
#include "nbd/redialer.h"
#include "nbd/uri.h"

using namespace unbd;
using namespace unbd::test;
using namespace std::chrono_literals;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {

constexpr uint64_t kDisk = 16ull << 20;

void writes_then_reads(const std::string& uri, uint16_t qd, uint32_t size, std::size_t count, uint64_t seed,
                       nbd::PayloadOps ops) {
    CAPTURE(qd);
    CAPTURE(size);
    {
        auto fe = connect_engine(uri, {.queue_depth = qd, .buffer_bytes = size, .payload_ops = ops});
        std::vector<int> results(count, 1);
        REQUIRE(fe->run_batch(
            count,
            [&](std::size_t i, uint16_t tag) {
                fill_pattern(fe->buffer(tag).data(), size, seed + i);
                return BlockRequest{.tag = tag, .op = BlockOp::Write, .offset = i * size % kDisk, .length = size};
            },
            [&](std::size_t i, uint16_t, int r) { results[i] = r; }));
        for (int r : results) REQUIRE(r == static_cast<int>(size));
        CHECK(fe->disconnect());
    }
    {
        Oracle o(uri);
        for (std::size_t i = 0; i < count; ++i)
            REQUIRE_MESSAGE(check_pattern(o.pread(i * size % kDisk, size).data(), size, seed + i), "request " << i);
        for (std::size_t i = 0; i < count; ++i) {  // new data for the engine to read
            std::vector<std::byte> d(size);
            fill_pattern(d.data(), size, seed + 1000 + i);
            o.pwrite(i * size % kDisk, d);
        }
    }
    auto fe = connect_engine(uri, {.queue_depth = qd, .buffer_bytes = size, .payload_ops = ops});
    std::size_t good = 0;
    REQUIRE(fe->run_batch(
        count,
        [&](std::size_t i, uint16_t tag) {
            return BlockRequest{.tag = tag, .op = BlockOp::Read, .offset = i * size % kDisk, .length = size};
        },
        [&](std::size_t i, uint16_t tag, int r) {
            if (r == static_cast<int>(size) && check_pattern(fe->buffer(tag).data(), size, seed + 1000 + i)) ++good;
        }));
    CHECK(good == count);
    CHECK(fe->disconnect());
}

// GnuTLS's system priority file without TLS 1.3, for the servers (and
// libnbd) started while it lives: TLS 1.2, what kTLS receive offload needs.
struct GnutlsTls12Only {
    std::string path;
    GnutlsTls12Only() {
        char tmpl[] = "/tmp/unbd-tls12.XXXXXX";
        const int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        const std::string conf = "[overrides]\ndisabled-version = tls1.3\n";
        REQUIRE(::write(fd, conf.data(), conf.size()) == static_cast<ssize_t>(conf.size()));
        ::close(fd);
        ::setenv("GNUTLS_SYSTEM_PRIORITY_FILE", path.c_str(), 1);
    }
    ~GnutlsTls12Only() {
        ::unsetenv("GNUTLS_SYSTEM_PRIORITY_FILE");
        ::unlink(path.c_str());
    }
};

}  // namespace

TEST_CASE("tls engine: TLS 1.2 (the server limited to it), x509 over TCP, data both ways, checked by libnbd") {
    GnutlsTls12Only tls12;
    TlsServer s(false, kDisk);
    {
        nbd::Connection c = nbd::connect_export(nbd::parse_uri(s.uri + "&tls-mode=userspace"), {});
        CHECK(c.tls_description().rfind("userspace (TLSv1.2, x509, ", 0) == 0);
    }
    writes_then_reads(s.uri, 16, 64 << 10, 64, 6, nbd::PayloadOps::UserCopy);
    writes_then_reads(s.uri, 32, 4096, 256, 7, nbd::PayloadOps::UserCopy);
}

TEST_CASE("tls engine: PSK over a Unix socket, data both ways, checked by libnbd") {
    TlsServer s(true, kDisk);
    for (auto ops : {nbd::PayloadOps::UserCopy, nbd::PayloadOps::ReadWriteFixed}) {
        CAPTURE(nbd::name(ops));
        writes_then_reads(s.uri, 1, 4096, 64, 1, ops);
        writes_then_reads(s.uri, 32, 4096, 512, 2, ops);
        writes_then_reads(s.uri, 16, 512 << 10, 24, 3, ops);
    }
}

TEST_CASE("tls engine: x509 with a client certificate over TCP, data both ways, checked by libnbd") {
    TlsServer s(false, kDisk);
    writes_then_reads(s.uri, 8, 64 << 10, 128, 4, nbd::PayloadOps::UserCopy);
    writes_then_reads(s.uri, 64, 4096, 1024, 5, nbd::PayloadOps::UserCopy);
}

TEST_CASE("tls engine: the connection shows its TLS - the tunnel ends with the connection") {
    TlsServer s(true, kDisk);
    nbd::Connection c = nbd::connect_export(nbd::parse_uri(s.uri), {});
    REQUIRE(c.tls);
    CHECK(c.tls_description().rfind("userspace (TLSv1.3, psk, ", 0) == 0);
    auto fe = std::make_unique<nbd::SyntheticFrontend>(std::move(c), nbd::SyntheticOptions{.queue_depth = 4});
    CHECK(fe->execute(BlockRequest{.tag = 0, .op = BlockOp::Flush}, 10s) == 0);
    CHECK(fe->disconnect());
    fe.reset();  // joins the tunnel's thread
}

TEST_CASE("tls engine: a restarted server gets a new TLS handshake on reconnect - data written before and after") {
    TlsServer s(true, kDisk);
    const nbd::Uri u = nbd::parse_uri(s.uri);
    nbd::ConnectOptions co;
    co.connect_timeout = 2s;
    co.handshake_timeout = 2s;
    nbd::Connection c = nbd::connect_export(u, co);
    nbd::RedialOptions ro;
    ro.uri = u;
    ro.connect = co;
    ro.reference = c.info;
    ro.reconnect_timeout = 30s;
    ro.backoff_cap = 200ms;
    auto redialer = std::make_unique<nbd::Redialer>(ro, nullptr);
    nbd::SyntheticOptions so{.queue_depth = 8, .buffer_bytes = 64 << 10};
    so.reconnect.redialer = redialer.get();
    auto fe = std::make_unique<nbd::SyntheticFrontend>(std::move(c), so);

    auto write = [&](uint64_t block, uint64_t seed) {
        fill_pattern(fe->buffer(0).data(), 64 << 10, seed);
        return fe->execute(BlockRequest{.tag = 0, .op = BlockOp::Write, .offset = block << 16, .length = 64 << 10,
                                        .fua = true},
                           30s);
    };
    REQUIRE(write(0, 100) == 64 << 10);
    s.server->restart();  // memory plugin: the disk is new and empty
    REQUIRE(write(1, 101) == 64 << 10);  // held, then sent on the new TLS connection
    CHECK(fe->link().connected());
    CHECK(redialer->status().reconnects == 1);
    REQUIRE(write(2, 102) == 64 << 10);
    CHECK(fe->disconnect());
    fe.reset();
    redialer.reset();
    Oracle o(s.uri);
    CHECK(check_pattern(o.pread(1 << 16, 64 << 10).data(), 64 << 10, 101));
    CHECK(check_pattern(o.pread(2 << 16, 64 << 10).data(), 64 << 10, 102));
}

// What `attach` does: connect (TLS tunnel running), pause, fork; the child
// (the daemon) resumes the tunnel and serves I/O; the parent drops its
// paused copy, which must not touch the connection.
TEST_CASE("tls engine: a paused tunnel survives fork() and works in the child after resume()") {
    TlsServer s(true, kDisk);
    nbd::Connection c = nbd::connect_export(nbd::parse_uri(s.uri), {});
    REQUIRE(c.tls);
    c.tls->pause();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 1;
        try {
            c.tls->resume();
            nbd::SyntheticFrontend fe(std::move(c), nbd::SyntheticOptions{.queue_depth = 4, .buffer_bytes = 64 << 10});
            fill_pattern(fe.buffer(0).data(), 64 << 10, 77);
            if (fe.execute(BlockRequest{.tag = 0, .op = BlockOp::Write, .offset = 1 << 20, .length = 64 << 10,
                                        .fua = true}) == 64 << 10 &&
                fe.disconnect())
                code = 0;
        } catch (...) {
            code = 2;
        }
        ::_exit(code);
    }
    c = nbd::Connection{};  // the parent's paused copy: closes its fds only
    int status = -1;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    Oracle o(s.uri);
    CHECK(check_pattern(o.pread(1 << 20, 64 << 10).data(), 64 << 10, 77));
}
