// Connecting to an NBD server: resolve, connect (TCP or Unix, with a
// timeout), TCP_NODELAY, then the handshake (with its own timeout); for
// nbds:// STARTTLS, the TLS handshake and a TLS tunnel (tls_module.h). The
// result is a connected socket in transmission phase plus what the server
// said about the export, ready to be handed to an io_uring.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "nbd/export_info.h"
#include "nbd/tls_module.h"
#include "nbd/uri.h"

namespace unbd::nbd {

struct ConnectOptions {
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds handshake_timeout{10'000};
    // The data path uses simple replies (like the kernel client), so only
    // `unbd info` asks for structured replies, to report whether they work.
    bool structured_replies = false;
    // TCP only: keepalive probes and TCP_USER_TIMEOUT, so a peer that
    // vanished (black-holed, not reset) is noticed without I/O. 0: off.
    std::chrono::milliseconds dead_peer_timeout{0};
};

struct Connection {
    Fd socket;  // blocking mode, transmission phase
    ExportInfo info;
    // nbds: the user-space TLS pump whose other end `socket` is (plain NBD
    // on a socketpair). It must live as long as the socket is used: whoever
    // keeps the socket keeps this too. Null without TLS.
    std::unique_ptr<TlsPump> tls;
    // nbds with --tls-mode=ktls: `socket` is the server socket, the kernel
    // encrypts (no tunnel); what was negotiated, "TLSv1.2, psk, ...".
    std::string ktls;

    // "userspace (TLSv1.3, psk, TLS_AES_128_GCM_SHA256)",
    // "ktls (TLSv1.2, x509, ECDHE-RSA-AES256-GCM-SHA384)", or "" without TLS.
    std::string tls_description() const;
    // The socket and its tunnel moved out, the info copied (it stays valid).
    Connection take() { return Connection{std::move(socket), info, std::move(tls), ktls}; }
};

// Throws unbd::Error with a one-line reason ("connection refused by ...",
// "export 'x' does not exist on nbd://...", "the server requires TLS", ...).
Connection connect_export(const Uri& uri, const ConnectOptions& options);

// NBD_OPT_LIST, then NBD_OPT_ABORT.
std::vector<ExportListing> list_exports(const Uri& uri, const ConnectOptions& options);

}  // namespace unbd::nbd
