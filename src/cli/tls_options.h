// The TLS options `info` and `attach` share: --tls, --tls-certificates,
// --tls-psk, --tls-username, --tls-hostname, --tls-verify-peer,
// --no-tls-verify-peer and --tls-mode (kTLS or the user-space tunnel). They override the URI's own TLS parameters; the
// result is a URI again (its to_string() carries them), so the state file,
// `recover` and reconnects all see the same settings.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "nbd/uri.h"

namespace unbd::cli {

struct TlsArgs {
    std::string mode;  // --tls: "", "require" or "off"
    std::string certificates;
    std::string psk_file;
    std::string username;
    std::string hostname;
    bool verify_peer = false;
    bool no_verify_peer = false;
    std::string tls_mode;  // --tls-mode: "", "auto", "ktls" or "userspace"
};

void add_tls_options(CLI::App* cmd, TlsArgs& args);
// Throws usage_error for contradictions (--tls=off with nbds://, a TLS
// option without TLS, certificates and a PSK together). Relative file names
// become absolute (the daemon reconnects from "/").
nbd::Uri apply_tls_options(nbd::Uri uri, const TlsArgs& args);

}  // namespace unbd::cli
