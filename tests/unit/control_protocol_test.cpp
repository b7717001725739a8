// The control socket's JSON lines (daemon/control_protocol.h): requests and
// replies read back as written; anything else is refused with one line.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "common/error.h"
#include "daemon/control_protocol.h"

using namespace unbd;
using daemon::ControlCommand;

namespace {

// The message parse_request throws for `line`, "" when it accepts it.
std::string refusal(const std::string& line) {
    try {
        daemon::parse_request(line);
    } catch (const Error& e) {
        CHECK(e.error_number() == EINVAL);
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("control: every request reads back as written, on one line") {
    for (const ControlCommand c : {ControlCommand::Ping, ControlCommand::Stats, ControlCommand::Detach,
                                   ControlCommand::Restart, ControlCommand::Resize}) {
        for (const bool shrink : {false, true}) {
            const daemon::ControlRequest r{c, shrink && c == ControlCommand::Resize};
            const std::string line = daemon::encode_request(r);
            CHECK(line.back() == '\n');
            CHECK(line.find('\n') == line.size() - 1);
            const daemon::ControlRequest back = daemon::parse_request(line);
            CHECK(back.cmd == r.cmd);
            CHECK(back.allow_shrink == r.allow_shrink);
        }
    }
    CHECK(daemon::encode_request({ControlCommand::Ping}) == "{\"cmd\":\"ping\"}\n");
}

TEST_CASE("control: a request with unknown fields is served (either side may add some)") {
    CHECK(daemon::parse_request(R"({"cmd":"stats","verbose":3})").cmd == ControlCommand::Stats);
}

TEST_CASE("control: bad requests are refused with what is wrong") {
    CHECK(refusal("") == "the request is not JSON");
    CHECK(refusal("ping") == "the request is not JSON");
    CHECK(refusal(R"(["ping"])") == "the request is not a JSON object");
    CHECK(refusal(R"({})") == "the request has no \"cmd\" string");
    CHECK(refusal(R"({"cmd":7})") == "the request has no \"cmd\" string");
    CHECK(refusal(R"({"cmd":"reboot"})") == "unknown command 'reboot'");
    CHECK(refusal(R"({"cmd":"PING"})") == "unknown command 'PING'");
    CHECK(refusal(R"({"cmd":"resize","allow_shrink":1})") == "\"allow_shrink\" is not true or false");
    CHECK(refusal(std::string(daemon::kMaxControlLine + 1, ' ')) == "the request is longer than 64 KiB");
}

TEST_CASE("control: an ok reply keeps its fields - a refusal becomes an Error with the daemon's words") {
    const std::string ok = daemon::encode_ok({{"pid", 1}, {"dev", "/dev/ublkb0"}});
    CHECK(ok.back() == '\n');
    const nlohmann::json j = daemon::parse_reply(ok);
    CHECK(j.at("pid") == 1);
    CHECK(j.at("ok") == true);
    CHECK(daemon::parse_reply(daemon::encode_ok()).at("ok") == true);

    const std::string no = daemon::encode_error("line one\nline two");
    CHECK(no.find('\n') == no.size() - 1);  // a message with a newline stays one line
    CHECK_THROWS_WITH_AS(daemon::parse_reply(no), "the daemon says: line one\nline two", Error);
    CHECK_THROWS_WITH_AS(daemon::parse_reply(R"({"ok":false})"), "the daemon says: (no reason given)", Error);
    CHECK_THROWS_WITH_AS(daemon::parse_reply(R"({"pid":3})"), "the daemon's reply has no \"ok\"", Error);
    CHECK_THROWS_WITH_AS(daemon::parse_reply(R"({"ok":"yes"})"), "the daemon's reply has no \"ok\"", Error);
    CHECK_THROWS_WITH_AS(daemon::parse_reply("garbage"), "the daemon's reply is not JSON", Error);
}

TEST_CASE("control: stats read back as sent") {
    daemon::DeviceStats s;
    s.id = 7;
    s.dev = "/dev/ublkb7";
    s.size_bytes = 1ull << 40;
    s.connection = "reconnecting";
    s.reconnects = 2;
    s.last_failure = "connection reset";
    ublk::IoStats q0, q1;
    q0.reads = 10, q0.read_bytes = 40960, q0.in_flight = 1, q0.waits = 8, q0.held_waits = 3;
    q1.writes = 3, q1.written_bytes = 1 << 20, q1.flushes = 1, q1.discards = 2, q1.errors = 1;
    s.queues = {q0, q1};
    s.total = q0;
    s.total += q1;
    CHECK(s.total.reads == 10);
    CHECK(s.total.written_bytes == 1 << 20);
    CHECK(s.total.in_flight == 1);

    const daemon::DeviceStats back = daemon::stats_from_json(nlohmann::json::parse(daemon::to_json(s).dump()));
    CHECK(back.id == 7);
    CHECK(back.dev == s.dev);
    CHECK(back.size_bytes == s.size_bytes);
    CHECK(back.connection == "reconnecting");
    CHECK(back.reconnects == 2);
    CHECK(back.last_failure == s.last_failure);
    REQUIRE(back.queues.size() == 2);
    CHECK(back.queues[1].discards == 2);
    CHECK(back.total.errors == 1);
    CHECK(back.total.read_bytes == 40960);
    CHECK(back.total.waits == 8);
    CHECK(back.total.held_waits == 3);

    // A daemon from before the wait counters: they read as 0.
    nlohmann::json older = daemon::to_json(s);
    older["io"].erase("waits");
    older["io"].erase("held_waits");
    const daemon::DeviceStats from_older = daemon::stats_from_json(older);
    CHECK(from_older.total.waits == 0);
    CHECK(from_older.total.reads == 10);
}

TEST_CASE("control: malformed stats are refused naming the field") {
    nlohmann::json j = daemon::to_json(daemon::DeviceStats{});
    CHECK_NOTHROW(daemon::stats_from_json(j));
    auto refused = [](nlohmann::json bad) {
        try {
            daemon::stats_from_json(bad);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    nlohmann::json bad = j;
    bad["io"]["reads"] = -1;
    CHECK(refused(bad) == "stats: 'reads' is missing or not a count");
    bad = j;
    bad["io"]["errors"] = 1.5;
    CHECK(refused(bad) == "stats: 'errors' is missing or not a count");
    bad = j;
    bad.erase("io");
    CHECK(refused(bad) == "stats: 'io' is missing");
    bad = j;
    bad["id"] = 1ull << 33;
    CHECK(refused(bad) == "stats: 'id' is out of range");
    bad = j;
    bad["queues"] = 3;
    CHECK(refused(bad) == "stats: 'queues' is not an array");
    bad = j;
    bad["dev"] = 3;
    CHECK(refused(bad) == "stats: 'dev' is not a string");
    CHECK(refused(nlohmann::json::array()) == "stats: not a JSON object");
}
