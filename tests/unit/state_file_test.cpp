// The state-file reader (daemon/state_file.h, parse_state): every file is
// read back as written, or refused with one line naming the file and what
// is wrong. Regressions found by tests/fuzz/state_file_fuzz.cpp are here
// too; their inputs are in tests/fuzz/corpus/state_file/regress-*.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "common/error.h"
#include "daemon/state_file.h"

using namespace unbd;

namespace {

const std::string kPath = "/run/unbd/3.json";

// The message parse_state throws for `text`, "" when it accepts it.
std::string refusal(const std::string& text) {
    try {
        daemon::parse_state(text, kPath);
    } catch (const Error& e) {
        CHECK(e.error_number() == EINVAL);
        CHECK(std::string(e.what()).starts_with(kPath));
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("state file: what the daemon writes is what is read back") {
    daemon::DeviceState s;
    s.id = 3;
    s.dev = "/dev/ublkb3";
    s.uri = "nbd://server:10809/disk";
    s.name = "db-data";
    s.size_bytes = 1ull << 40;
    s.pid = 1234;
    s.reconnect_timeout_ms = -1;
    s.resize_seq = 7;
    s.owner_uid = 4101;
    const auto back = daemon::parse_state(s.to_json().dump(2), kPath);
    CHECK(back.to_json() == s.to_json());
    CHECK(back.owner_uid == 4101);
}

TEST_CASE("state file: the TLS mode is kept - null without TLS, absent in an older file") {
    daemon::DeviceState s;
    s.id = 1;
    s.dev = "/dev/ublkb1";
    CHECK(s.to_json()["tls"].is_null());
    s.tls = "ktls (TLSv1.2, psk, ECDHE-PSK-CHACHA20-POLY1305)";
    CHECK(s.to_json()["tls"] == s.tls);
    CHECK(daemon::parse_state(s.to_json().dump(), kPath).tls == s.tls);
    CHECK(daemon::parse_state("{\"id\": 1, \"dev\": \"/dev/ublkb1\"}", kPath).tls.empty());
}

TEST_CASE("state file: corrupt text, a newer version or a missing id are refused with the file named") {
    CHECK(refusal("{\"id\": 3, \"dev\": \"/dev/ublkb3\"").find("is corrupt") != std::string::npos);
    CHECK(refusal("{\"version\": 2, \"id\": 3, \"dev\": \"/dev/ublkb3\"}").find("newer unbd") != std::string::npos);
    CHECK(refusal("{\"dev\": \"/dev/ublkb3\"}").find("no 'id'") != std::string::npos);
    CHECK(refusal("[1, 2]").find("not a JSON object") != std::string::npos);
    CHECK(refusal("{\"id\": 3, \"dev\": 5}").find("is corrupt") != std::string::npos);
}

TEST_CASE("state file: numbers out of their field's range are refused, not cast (fuzz: state_file)") {
    // regress-float-id: a float beyond uint32_t was cast (undefined behaviour).
    CHECK(refusal("{\"id\": 1e300, \"dev\": \"x\"}").find("'id' is 1e+300, not a whole number") !=
          std::string::npos);
    CHECK(refusal("{\"id\": 1, \"dev\": \"x\", \"pid\": -1e30}").find("'pid'") != std::string::npos);
    // Integers that used to wrap silently: a negative queue count, a pid past int.
    CHECK(refusal("{\"id\": 1, \"dev\": \"x\", \"queues\": -1}").find("'queues' is -1") != std::string::npos);
    CHECK(refusal("{\"id\": 1, \"dev\": \"x\", \"pid\": 4294967297}").find("'pid'") != std::string::npos);
    CHECK(refusal("{\"id\": 4294967296, \"dev\": \"x\"}").find("'id'") != std::string::npos);
    CHECK(refusal("{\"id\": 1, \"dev\": \"x\", \"options\": {\"io_timeout_ms\": 1.5}}").find("'io_timeout_ms'") !=
          std::string::npos);
    CHECK(refusal("{\"version\": 1e99, \"id\": 1, \"dev\": \"x\"}").find("'version'") != std::string::npos);
    // The extremes of each range are fine.
    const auto s = daemon::parse_state(
        "{\"id\": 4294967295, \"dev\": \"x\", \"pid\": -2147483648, \"size_bytes\": 18446744073709551615}", kPath);
    CHECK(s.id == 4294967295u);
    CHECK(s.pid == -2147483648);
    CHECK(s.size_bytes == ~0ull);
}
