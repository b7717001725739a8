// TlsRecordCounter and the key-log mark of Tls13ReceiveTracker: pure.
#include <doctest/doctest.h>

#include <variant>
#include <vector>

#include "nbd/tls/tls13_receive_key.h"

using namespace unbd::nbd;

namespace {

std::vector<unsigned char> record(unsigned char type, std::size_t body) {
    std::vector<unsigned char> r = {type, 3, 3, static_cast<unsigned char>(body >> 8),
                                    static_cast<unsigned char>(body & 0xff)};
    r.resize(5 + body, 0xab);
    return r;
}

}  // namespace

TEST_CASE("TlsRecordCounter counts whole records however the bytes are split") {
    std::vector<unsigned char> stream;
    for (std::size_t len : {100u, 0u, 16384u, 1u}) {
        auto r = record(23, len);
        stream.insert(stream.end(), r.begin(), r.end());
    }
    for (std::size_t chunk : {1u, 3u, 5u, 7u, 4096u, 100000u}) {
        CAPTURE(chunk);
        TlsRecordCounter c;
        for (std::size_t off = 0; off < stream.size(); off += chunk) {
            c.feed(std::span(stream).subspan(off, std::min(chunk, stream.size() - off)));
        }
        CHECK(c.records() == 4);
        CHECK(c.at_boundary());
    }
    TlsRecordCounter half;
    half.feed(std::span(stream).first(3));
    CHECK_FALSE(half.at_boundary());
    half.feed(std::span(stream).subspan(3, 50));
    CHECK_FALSE(half.at_boundary());
    CHECK(half.records() == 0);
}

TEST_CASE("Tls13ReceiveTracker: the sequence counts records after the server's secret, and refuses what it cannot count") {
    const std::string secret(64, 'a');  // 32 bytes of 0xaa, as hex
    auto r = record(23, 40);
    SUBCASE("records after the mark") {
        Tls13ReceiveTracker t;
        t.on_bytes_read(r);  // the Finished
        t.on_key_log_line("CLIENT_HANDSHAKE_TRAFFIC_SECRET 00 " + secret);
        t.on_key_log_line("SERVER_TRAFFIC_SECRET_0 0011 " + secret);
        t.on_bytes_read(r);
        t.on_bytes_read(r);
        auto k = t.key(0x1302, false);
        REQUIRE(std::holds_alternative<TlsTrafficKey>(k));
        CHECK(std::get<TlsTrafficKey>(k).record_sequence == 2);
        CHECK(std::get<TlsTrafficKey>(k).key.size() == 32);
        CHECK(std::get<TlsTrafficKey>(k).iv.size() == 12);
        CHECK(std::get<TlsTrafficKey>(t.key(0x1301, false)).key.size() == 16);
        CHECK(std::holds_alternative<std::string>(t.key(0x1304, false)));  // AES-128-CCM-8: not ours
        CHECK(std::holds_alternative<std::string>(t.key(0x1302, true)));   // OpenSSL holds plaintext
    }
    SUBCASE("no secret logged") {
        Tls13ReceiveTracker t;
        t.on_bytes_read(r);
        CHECK(std::get<std::string>(t.key(0x1301, false)) == "OpenSSL did not log the server's traffic secret");
    }
    SUBCASE("a record half read") {
        Tls13ReceiveTracker t;
        t.on_key_log_line("SERVER_TRAFFIC_SECRET_0 0011 " + secret);
        t.on_bytes_read(std::span(r).first(10));
        CHECK(std::holds_alternative<std::string>(t.key(0x1301, false)));
    }
}
