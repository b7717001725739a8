// Fuzzes the state-file reader (src/daemon/state_file.h, parse_state in
// state_json.cpp) with the input as the file's text. Whatever the text,
// parse_state returns a DeviceState or throws unbd::Error with a message
// (`unbd list`, `detach` and `recover` rely on that); anything else
// escaping, or a sanitizer report, is a crash. An accepted state must
// survive to_json -> parse_state unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "daemon/state_file.h"

using namespace unbd;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    daemon::DeviceState s;
    try {
        s = daemon::parse_state(text, "/run/unbd/0.json");
    } catch (const Error& e) {
        check(*e.what() != '\0');
        return 0;
    }
    const nlohmann::json j = s.to_json();
    daemon::DeviceState again;
    try {
        again = daemon::parse_state(j.dump(), "/run/unbd/0.json");
    } catch (const Error&) {
        check(false);  // what we write must be what we read
    }
    check(again.to_json() == j);
    return 0;
}
