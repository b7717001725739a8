// judge_control_record (nbd/ktls.h): what a non-data record after the kTLS
// handoff means. Pure.
#include <doctest/doctest.h>

#include <vector>

#include "nbd/ktls.h"

using unbd::nbd::judge_control_record;

namespace {
// One handshake message: type, 24-bit length, body.
std::vector<unsigned char> message(unsigned char type, std::size_t len) {
    std::vector<unsigned char> m = {type, static_cast<unsigned char>(len >> 16),
                                    static_cast<unsigned char>(len >> 8), static_cast<unsigned char>(len)};
    m.resize(4 + len, 0x5a);
    return m;
}
}  // namespace

TEST_CASE("kTLS control records: tickets are dropped, a KeyUpdate or an alert ends the connection") {
    auto ticket = message(4, 200);
    CHECK(judge_control_record(22, ticket) == "");
    auto two = ticket;
    two.insert(two.end(), ticket.begin(), ticket.end());
    CHECK(judge_control_record(22, two) == "");  // GnuTLS and OpenSSL may send two in one record

    auto key_update = message(24, 1);
    CHECK(judge_control_record(22, key_update).find("KeyUpdate") != std::string::npos);
    auto ticket_then_update = ticket;
    ticket_then_update.insert(ticket_then_update.end(), key_update.begin(), key_update.end());
    CHECK(judge_control_record(22, ticket_then_update).find("KeyUpdate") != std::string::npos);

    CHECK(judge_control_record(22, message(13, 10)) == "the server sent TLS handshake message 13 after the handshake");
    auto cut = ticket;
    cut.resize(100);
    CHECK(judge_control_record(22, cut) == "the server sent a truncated TLS handshake message");

    const unsigned char close_notify[] = {1, 0};
    CHECK(judge_control_record(21, close_notify) == "the server closed the TLS connection (close_notify)");
    const unsigned char bad_mac[] = {2, 20};
    CHECK(judge_control_record(21, bad_mac) == "the server sent TLS alert 20 (fatal)");
    CHECK(judge_control_record(20, {}) == "the server sent an unexpected TLS record (content type 20)");
}
