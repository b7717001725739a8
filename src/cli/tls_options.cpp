// --tls* options (see tls_options.h).
#include "cli/tls_options.h"

#include <filesystem>

#include "common/error.h"

namespace unbd::cli {

void add_tls_options(CLI::App* cmd, TlsArgs& a) {
    const char* group = "TLS";
    cmd->add_option("--tls", a.mode, "require: TLS for an nbd:// URI too (nbds:// always requires it); off: never")
        ->check(CLI::IsMember({"require", "off"}))
        ->group(group);
    cmd->add_option("--tls-certificates", a.certificates,
                    "DIR with ca-cert.pem (and client-cert.pem, client-key.pem) for x509 (default: the system's CAs)")
        ->group(group);
    cmd->add_option("--tls-psk", a.psk_file, "FILE of psktool's user:hexkey lines: a pre-shared key instead of x509")
        ->group(group);
    cmd->add_option("--tls-username", a.username, "the PSK user name (default: the current user)")->group(group);
    cmd->add_option("--tls-hostname", a.hostname,
                    "the name the server's certificate must have (default: the URI's host)")
        ->group(group);
    auto* on = cmd->add_flag("--tls-verify-peer", a.verify_peer, "verify the server's certificate (the default)")
                   ->group(group);
    auto* off = cmd->add_flag("--no-tls-verify-peer", a.no_verify_peer,
                              "do not verify the server's certificate (insecure: for tests)")
                    ->group(group);
    on->excludes(off);
    cmd->add_option("--tls-mode", a.tls_mode,
                    "who encrypts the data: ktls (the kernel; TCP, the tls module; fails clearly "
                    "otherwise), userspace (a tunnel thread), auto (default: userspace, see DESIGN.md)")
        ->check(CLI::IsMember({"auto", "ktls", "userspace"}))
        ->group(group);
}

nbd::Uri apply_tls_options(nbd::Uri uri, const TlsArgs& a) {
    if (a.mode == "off" && uri.tls) throw usage_error("--tls=off contradicts the nbds:// URI, which requires TLS");
    if (a.mode == "require") uri.tls = true;
    const bool any = !a.certificates.empty() || !a.psk_file.empty() || !a.username.empty() || !a.hostname.empty() ||
                     a.verify_peer || a.no_verify_peer || !a.tls_mode.empty();
    if (any && !uri.tls)
        throw usage_error("TLS options need TLS: use an nbds:// or nbds+unix:// URI, or --tls=require");
    nbd::TlsSettings& t = uri.tls_settings;
    if (!a.certificates.empty()) t.certificates = a.certificates;
    if (!a.psk_file.empty()) t.psk_file = a.psk_file;
    if (!a.username.empty()) t.username = a.username;
    if (!a.hostname.empty()) t.hostname = a.hostname;
    if (a.verify_peer) t.verify_peer = true;
    if (a.no_verify_peer) t.verify_peer = false;
    if (!a.tls_mode.empty()) t.mode = nbd::parse_tls_mode(a.tls_mode, "--tls-mode");
    if (!t.certificates.empty() && !t.psk_file.empty())
        throw usage_error("give TLS certificates or a PSK file, not both");
    // The daemon runs in "/" and reconnects later: relative paths would
    // name other files by then.
    std::error_code ec;
    if (!t.certificates.empty()) t.certificates = std::filesystem::absolute(t.certificates, ec).lexically_normal();
    if (!t.psk_file.empty()) t.psk_file = std::filesystem::absolute(t.psk_file, ec).lexically_normal();
    return uri;
}

}  // namespace unbd::cli
