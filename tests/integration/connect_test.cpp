// connect_export against real nbdkit: whichever way the handshake ends (GO,
// EXPORT_NAME with or without NO_ZEROES, plain newstyle), the returned
// blocking socket sits exactly at the start of transmission. Proven by a raw
// NBD_CMD_READ on it whose data libnbd wrote.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/support/nbdkit.h"
#include "nbd/connect.h"

using namespace unbd;
using namespace unbd::test;

namespace {

void write_all(int fd, const void* p, std::size_t n) {
    auto* b = static_cast<const char*>(p);
    while (n > 0) {
        auto r = ::write(fd, b, n);
        REQUIRE(r > 0);
        b += r;
        n -= static_cast<std::size_t>(r);
    }
}

void read_all(int fd, void* p, std::size_t n) {
    auto* b = static_cast<char*>(p);
    while (n > 0) {
        auto r = ::read(fd, b, n);
        REQUIRE(r > 0);
        b += r;
        n -= static_cast<std::size_t>(r);
    }
}

// One simple-reply READ on the raw socket; returns the data.
std::vector<std::byte> raw_read(int fd, uint64_t offset, uint32_t length) {
    std::byte req[proto::kRequestSize];
    proto::encode_request({0, proto::Cmd::Read, 0x1234, offset, length}, std::span<std::byte, proto::kRequestSize>(req));
    write_all(fd, req, sizeof req);
    std::byte rep[proto::kSimpleReplySize];
    read_all(fd, rep, sizeof rep);
    auto r = proto::decode_simple_reply(std::span<const std::byte, proto::kSimpleReplySize>(rep));
    REQUIRE_MESSAGE(r, "no simple reply magic: the socket was not at the start of transmission");
    CHECK(r->cookie == 0x1234);
    CHECK(r->error == 0);
    std::vector<std::byte> data(length);
    read_all(fd, data.data(), length);
    return data;
}

void check_transmission_ready(const std::vector<std::string>& nbdkit_options, bool tcp) {
    NbdkitProcess server({"memory", "1M"}, tcp, nbdkit_options);
    std::vector<std::byte> pattern(4096);
    fill_pattern(pattern.data(), pattern.size(), 99);
    Oracle(server.uri()).pwrite(8192, pattern);

    auto conn = nbd::connect_export(nbd::parse_uri(server.uri()), {});
    CHECK(conn.info.size == 1u << 20);
    CHECK_FALSE(conn.info.structured_replies);  // the data path never negotiates them
    CHECK_FALSE(conn.info.can_df());
    int fd = conn.socket.get();
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
    if (tcp) {
        int nodelay = 0;
        socklen_t len = sizeof nodelay;
        REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
        CHECK(nodelay != 0);
    }
    auto data = raw_read(fd, 8192, 4096);
    CHECK(data == pattern);
    std::byte disc[proto::kRequestSize];
    proto::encode_request({0, proto::Cmd::Disc, 0, 0, 0}, std::span<std::byte, proto::kRequestSize>(disc));
    write_all(fd, disc, sizeof disc);
}

}  // namespace

TEST_CASE("connect: after NBD_OPT_GO the socket is at transmission (unix)") { check_transmission_ready({}, false); }

TEST_CASE("connect: after NBD_OPT_GO the socket is at transmission (tcp, TCP_NODELAY)") {
    check_transmission_ready({}, true);
}

TEST_CASE("connect: plain newstyle EXPORT_NAME with the 124 zero bytes") {
    check_transmission_ready({"--mask-handshake=0"}, false);
}

TEST_CASE("connect: plain newstyle EXPORT_NAME with NO_ZEROES") {
    check_transmission_ready({"--mask-handshake=2"}, false);
}

TEST_CASE("connect: fixed newstyle without NO_ZEROES") { check_transmission_ready({"--mask-handshake=1"}, false); }

TEST_CASE("connect: list_exports over nbdkit") {
    NbdkitProcess server({"--filter=exportname", "memory", "1M", "exportname=a", "exportname=b",
                          "exportname-list=explicit"});
    auto list = nbd::list_exports(nbd::parse_uri(server.uri()), {});
    REQUIRE(list.size() == 2);
    CHECK(list[0].name == "a");
    CHECK(list[1].name == "b");
}
