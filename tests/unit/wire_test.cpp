// proto/nbd_wire.h codecs: byte order, round trips, magic checks.
#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "proto/nbd_wire.h"

using namespace unbd::proto;

namespace {
template <std::size_t N>
std::array<std::byte, N> bytes(std::initializer_list<int> v) {
    std::array<std::byte, N> a{};
    std::size_t i = 0;
    for (int x : v) a[i++] = static_cast<std::byte>(x);
    return a;
}
}  // namespace

TEST_CASE("wire: big-endian load and store") {
    std::array<std::byte, 8> b{};
    store_be<uint64_t>(b.data(), 0x0102030405060708ull);
    CHECK(b[0] == std::byte{1});
    CHECK(b[7] == std::byte{8});
    CHECK(load_be<uint64_t>(b.data()) == 0x0102030405060708ull);
    store_be<uint16_t>(b.data(), 0xabcd);
    CHECK(load_be<uint16_t>(b.data()) == 0xabcd);
    CHECK(b[0] == std::byte{0xab});
}

TEST_CASE("wire: option request encodes IHAVEOPT, option, length") {
    std::array<std::byte, kOptionRequestSize> out{};
    encode_option_request({Opt::Go, 0x11223344}, out);
    auto want = bytes<16>({'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 0, 0, 7, 0x11, 0x22, 0x33, 0x44});
    CHECK(out == want);
}

TEST_CASE("wire: option reply decodes and checks its magic") {
    auto in = bytes<20>({0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9, 0, 0, 0, 7, 0x80, 0, 0, 6, 0, 0, 1, 2});
    auto r = decode_option_reply(in);
    REQUIRE(r);
    CHECK(r->option == 7);
    CHECK(r->type == static_cast<uint32_t>(Rep::ErrUnknown));
    CHECK(r->length == 0x102);
    in[0] = std::byte{0xff};
    CHECK_FALSE(decode_option_reply(in));
}

TEST_CASE("wire: request round trip") {
    Request r{kCmdFlagFua | kCmdFlagNoHole, Cmd::WriteZeroes, 0xdeadbeefcafef00dull, 1ull << 40, 65536};
    std::array<std::byte, kRequestSize> buf{};
    encode_request(r, buf);
    CHECK(load_be<uint32_t>(buf.data()) == kRequestMagic);
    auto d = decode_request(buf);
    REQUIRE(d);
    CHECK(d->flags == r.flags);
    CHECK(d->type == r.type);
    CHECK(d->cookie == r.cookie);
    CHECK(d->offset == r.offset);
    CHECK(d->length == r.length);
    buf[3] = std::byte{0};
    CHECK_FALSE(decode_request(buf));
}

TEST_CASE("wire: simple reply round trip and magic check") {
    std::array<std::byte, kSimpleReplySize> buf{};
    encode_simple_reply({kEIO, 42}, buf);
    auto d = decode_simple_reply(buf);
    REQUIRE(d);
    CHECK(d->error == kEIO);
    CHECK(d->cookie == 42);
    store_be<uint32_t>(buf.data(), kStructuredReplyMagic);
    CHECK_FALSE(decode_simple_reply(buf));
}

TEST_CASE("wire: structured reply header") {
    std::array<std::byte, kStructuredReplySize> buf{};
    store_be<uint32_t>(buf.data(), kStructuredReplyMagic);
    store_be<uint16_t>(buf.data() + 4, kReplyFlagDone);
    store_be<uint16_t>(buf.data() + 6, static_cast<uint16_t>(Chunk::OffsetData));
    store_be<uint64_t>(buf.data() + 8, 7);
    store_be<uint32_t>(buf.data() + 16, 4104);
    auto d = decode_structured_reply(buf);
    REQUIRE(d);
    CHECK(d->flags == kReplyFlagDone);
    CHECK(d->type == static_cast<uint16_t>(Chunk::OffsetData));
    CHECK(d->cookie == 7);
    CHECK(d->length == 4104);
    store_be<uint32_t>(buf.data(), kSimpleReplyMagic);
    CHECK_FALSE(decode_structured_reply(buf));
}

TEST_CASE("wire: NBD errors map to errno, unknown ones to EINVAL") {
    CHECK(errno_from_nbd_error(0) == 0);
    CHECK(errno_from_nbd_error(kEPERM) == EPERM);
    CHECK(errno_from_nbd_error(kENOSPC) == ENOSPC);
    CHECK(errno_from_nbd_error(kESHUTDOWN) == ESHUTDOWN);
    CHECK(errno_from_nbd_error(kENOTSUP) == EOPNOTSUPP);
    CHECK(errno_from_nbd_error(9999) == EINVAL);
}

TEST_CASE("wire: names and power-of-two helper") {
    CHECK(std::strcmp(name(Opt::Go), "NBD_OPT_GO") == 0);
    CHECK(std::strcmp(name(Cmd::Flush), "NBD_CMD_FLUSH") == 0);
    CHECK(std::strcmp(rep_name(static_cast<uint32_t>(Rep::ErrTlsReqd)), "NBD_REP_ERR_TLS_REQD") == 0);
    CHECK(is_power_of_two(4096));
    CHECK_FALSE(is_power_of_two(0));
    CHECK_FALSE(is_power_of_two(3));
}
