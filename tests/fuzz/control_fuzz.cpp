// Fuzzes the control socket's lines (src/daemon/control_protocol.h): the
// input is one line as a request (what a daemon reads from a client) and as
// a reply (what `unbd` reads from a daemon), and, when it is a JSON object,
// as stats. Whatever the line, each parse returns or throws unbd::Error
// with a one-line message; anything else escaping, or a sanitizer report,
// is a crash. What is accepted must encode and parse back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "daemon/control_protocol.h"

using namespace unbd;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_message(const Error& e) { check(*e.what() != '\0'); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string line(reinterpret_cast<const char*>(data), size);
    try {
        const daemon::ControlRequest r = daemon::parse_request(line);
        const daemon::ControlRequest again = daemon::parse_request(daemon::encode_request(r));
        check(again.cmd == r.cmd && again.allow_shrink == (r.allow_shrink && r.cmd == daemon::ControlCommand::Resize));
    } catch (const Error& e) {
        check(e.error_number() == EINVAL);
        check_message(e);
    }
    nlohmann::json reply;
    try {
        reply = daemon::parse_reply(line);
    } catch (const Error& e) {
        check_message(e);
        return 0;
    }
    try {
        const daemon::DeviceStats s = daemon::stats_from_json(reply.value("stats", nlohmann::json()));
        const nlohmann::json j = daemon::to_json(s);
        check(daemon::to_json(daemon::stats_from_json(nlohmann::json::parse(j.dump()))) == j);
    } catch (const Error& e) {
        check_message(e);
    }
    return 0;
}
