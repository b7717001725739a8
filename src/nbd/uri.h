// NBD URIs (NetworkBlockDevice/nbd doc/uri.md):
//   nbd://host[:port]/export          TCP, port 10809 by default
//   nbd+unix:///export?socket=PATH    Unix socket
//   nbds://, nbds+unix://             the same over TLS (STARTTLS; never a
//                                     fallback to plain text)
// TLS query parameters: tls-type=x509|psk, tls-hostname, tls-verify-peer
// (the spec's), tls-certificates=DIR and tls-psk-file=FILE (libnbd's, which
// nbdkit hands out in $uri); the user name of a PSK is the URI's userinfo
// (nbds://alice@host/) or tls-username. unbd's own: tls-mode=auto|ktls|
// userspace (the data path; see TlsMode).
#pragma once

#include <cstdint>
#include <string>

namespace unbd::nbd {

enum class Transport { Tcp, Unix };

// Who encrypts the data path (DESIGN.md, TLS). Userspace: OpenSSL in a
// tunnel thread (any kernel, any TLS version). Ktls: the kernel's `tls` ULP
// both ways, the engine on the real socket; needs TCP and CONFIG_TLS (TLS
// 1.2: Linux 4.17+; 1.3: 5.1+, its receive key set by us where OpenSSL is
// older than 3.2, nbd/tls/tls13_receive_key.h), and fails clearly otherwise. Auto: what the
// measurements chose (today: userspace, see DESIGN.md).
enum class TlsMode { Auto, Ktls, Userspace };
const char* name(TlsMode mode);
// "auto", "ktls" or "userspace"; throws usage_error naming `what` otherwise.
TlsMode parse_tls_mode(const std::string& text, const std::string& what);

// What a TLS connection uses. Empty certificates and psk_file: the system's
// CA store, x509.
struct TlsSettings {
    std::string certificates;   // DIR: ca-cert.pem [client-cert.pem client-key.pem] (nbdkit's layout)
    std::string psk_file;       // FILE: psktool's "user:hexkey" lines
    std::string username;       // PSK identity; "" = the current user
    std::string hostname;       // checked against the certificate; "" = the URI's host
    bool verify_peer = true;
    TlsMode mode = TlsMode::Auto;

    bool operator==(const TlsSettings&) const = default;
};

struct Uri {
    Transport transport = Transport::Tcp;
    std::string host;         // TCP: name or address, IPv6 without brackets
    uint16_t port = 10809;    // TCP
    std::string socket_path;  // Unix
    std::string export_name;  // percent-decoded path without its leading '/'
    bool tls = false;         // nbds://, nbds+unix://
    TlsSettings tls_settings; // only meaningful with tls

    // The URI in canonical form, for messages and the state file:
    // "nbd://host:10809/disk", "nbds://alice@host:10809/disk?tls-psk-file=/k".
    std::string to_string() const;
    // The same without the query's TLS parameters: for messages.
    std::string display() const;
};

// Throws unbd::Error naming the bad part of the URI.
Uri parse_uri(const std::string& text);

}  // namespace unbd::nbd
