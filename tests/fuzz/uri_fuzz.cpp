// Fuzzes nbd::parse_uri (src/nbd/uri.h) with the input as the URI text.
// A URI is either refused with unbd::Error, or accepted; an accepted one
// must print (to_string) as a URI that parses back to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "nbd/uri.h"
#include "proto/nbd_wire.h"

using namespace unbd;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool same(const nbd::Uri& a, const nbd::Uri& b) {
    return a.transport == b.transport && a.host == b.host && a.port == b.port && a.socket_path == b.socket_path &&
           a.export_name == b.export_name && a.tls == b.tls && a.tls_settings == b.tls_settings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    nbd::Uri uri;
    try {
        uri = nbd::parse_uri(text);
    } catch (const Error& e) {
        check(*e.what() != '\0');
        return 0;
    }
    check(uri.export_name.size() <= proto::kMaxStringLength);
    check(uri.export_name.find('\0') == std::string::npos);
    if (uri.transport == nbd::Transport::Tcp)
        check(!uri.host.empty() && uri.port != 0);
    else
        check(!uri.socket_path.empty());
    const std::string printed = uri.to_string();
    nbd::Uri again;
    try {
        again = nbd::parse_uri(printed);
    } catch (const Error&) {
        check(false);  // what we print for a URI we accepted must be a URI we accept
    }
    check(same(uri, again));
    return 0;
}
