// psktool key files (nbd/tls/tls_session.h: read_psk_key, psk_user): the user's
// line is found, its hex decoded; every bad line or missing user says which.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/error.h"
#include "nbd/tls/tls_session.h"

using unbd::nbd::psk_user;
using unbd::nbd::read_psk_key;

namespace {

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& text) {
        char tmpl[] = "/tmp/unbd-psk-test.XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

std::string error_of(const std::string& file, const std::string& user) {
    try {
        read_psk_key(file, user);
    } catch (const unbd::Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("psk file: the user's key, among others, CRLF tolerated") {
    TempFile f("bob:00ff\r\nalice:0123456789abcdefABCDEF\nalice2:11\n");
    auto k = read_psk_key(f.path, "alice");
    CHECK(k.identity == "alice");
    REQUIRE(k.key.size() == 11);
    CHECK(k.key[0] == 0x01);
    CHECK(k.key[7] == 0xef);
    CHECK(k.key[10] == 0xef);
    CHECK(read_psk_key(f.path, "bob").key == std::vector<unsigned char>{0x00, 0xff});
    CHECK(read_psk_key(f.path, "alice2").key.size() == 1);  // not a prefix match
}

TEST_CASE("psk file: errors name the file, the user and the line") {
    TempFile f("bob:00f\ncarol:zz\n");
    CHECK(error_of(f.path, "alice") ==
          "user 'alice' is not in the PSK file " + f.path + " (give another with --tls-username)");
    CHECK(error_of(f.path, "bob").find("line 1 (expected an even number of hex digits)") != std::string::npos);
    CHECK(error_of(f.path, "carol").find("line 2 (not hex)") != std::string::npos);
    CHECK(error_of("/nonexistent/keys.psk", "alice").find("cannot read the PSK file /nonexistent/keys.psk") !=
          std::string::npos);
    TempFile big("dave:" + std::string(2 * 600, 'a') + "\n");
    CHECK(error_of(big.path, "dave").find("is longer than") != std::string::npos);
}

TEST_CASE("psk user: the configured one, else the current user") {
    unbd::nbd::TlsSettings t;
    t.username = "alice";
    CHECK(psk_user(t) == "alice");
    t.username.clear();
    CHECK_FALSE(psk_user(t).empty());
}
