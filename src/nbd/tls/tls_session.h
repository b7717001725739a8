// TlsSession: the client side of one TLS connection (OpenSSL), over a
// connected, non-blocking socket it does not own.
//
// Contract:
// - Built from the URI's TlsSettings for one connection attempt; every
//   attempt (a reconnect too) builds a new one, so it re-reads the
//   certificates and the PSK file and redoes the whole TLS handshake.
// - x509 (default): CA from DIR/ca-cert.pem (the system store without DIR),
//   client certificate DIR/client-cert.pem + client-key.pem if both exist
//   (nbdkit's layout); the peer is verified, host name included, unless
//   verify_peer is false. PSK (psk_file): psktool's "user:hexkey" lines; TLS
//   1.3 through the use-session callback, TLS 1.2 through the client callback.
// - handshake(), write_all() and read_some() block the calling thread up to a
//   deadline (poll), and throw unbd::Error with one line a person can act on
//   ("the server's certificate is signed by an unknown CA ...").
// - After the NBD handshake, the session moves into a TlsTunnel (tls_tunnel.h),
//   which drives it without deadlines -- or, with TlsMode::Ktls, the kernel
//   gets the keys both ways (OpenSSL's SSL_OP_ENABLE_KTLS on the real fd,
//   plus TLS 1.3's receive key from us, tls13_receive_key.h; renegotiation
//   off) and the session is dropped: the engine runs on the socket itself
//   (give_kernel_both_directions() says whether it may).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "nbd/tls/tls13_receive_key.h"
#include "nbd/tls_module.h"
#include "nbd/uri.h"

namespace unbd::nbd {

struct SslCtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// One "user:hexkey" line of a psktool file, parsed (tls_psk.cpp).
struct PskKey {
    std::string identity;
    std::vector<unsigned char> key;
};
// The key of `user` in `file`; throws unbd::Error (missing file, no such
// user, bad hex) naming the file and the line.
PskKey read_psk_key(const std::string& file, const std::string& user);
// The user name for a PSK: --tls-username / tls-username / the URI's
// userinfo, else the current user (as libnbd and qemu do).
std::string psk_user(const TlsSettings& settings);

// The peer closed the connection without a close_notify (SSL_get_error's
// result; looks at, does not clear, the error queue).
bool closed_without_notify(int ssl_error);

class TlsSession final : public TlsChannel {
public:
    // `host`: the URI's host ("" for Unix sockets): the name checked against
    // the certificate unless tls-hostname says otherwise. `where`: for messages.
    TlsSession(const TlsSettings& settings, const std::string& host, std::string where);
    ~TlsSession() override;
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    void handshake(int fd, Clock::time_point deadline) override;
    void write_all(std::span<const std::byte> data, Clock::time_point deadline) override;
    // Some bytes (at most data.size()); 0 at the server's end of stream.
    std::size_t read_some(std::span<std::byte> data, Clock::time_point deadline) override;
    // A best-effort close_notify (one try, never waits).
    void close_notify() noexcept;

    SSL* ssl() const { return ssl_.get(); }
    int fd() const { return fd_; }
    // "TLSv1.3, x509, TLS_AES_256_GCM_SHA384": for `unbd info` and the logs.
    std::string description() const override;
    const std::string& where() const { return where_; }
    // TlsMode::Ktls asked for.
    bool wants_ktls() const override { return ktls_; }
    // After the NBD handshake, TlsMode::Ktls: puts the TLS 1.3 receive key
    // in the kernel where OpenSSL did not, then "" when the kernel encrypts
    // and decrypts (TX and RX both on, nothing buffered in OpenSSL), else
    // why not, as a clause ("the kernel has no TLS support (...)").
    std::string give_kernel_both_directions() override;
    // TlsMode::Ktls on TLS 1.3: the server's traffic key and the sequence
    // number of its next record, or why not.
    std::variant<TlsTrafficKey, std::string> kernel_receive_key() const;
    // x509 with client-cert.pem and client-key.pem loaded.
    bool has_client_certificate() const override { return client_certificate_; }

    // The sentence for a failed TLS operation (err = SSL_get_error's result),
    // using OpenSSL's error queue and the verification result; clears the queue.
    std::string explain_failure(const char* during, int err) const;

private:
    friend struct TlsCallbacks;
    void wait(int ssl_error, Clock::time_point deadline, const char* during);

    std::string where_;
    bool psk_ = false;
    bool verify_peer_ = true;
    bool client_certificate_ = false;
    bool ktls_ = false;
    std::string checked_host_;
    PskKey psk_key_;
    Tls13ReceiveTracker receive_tracker_;
    SslCtxPtr ctx_;
    SslPtr ssl_;
    int fd_ = -1;
};

}  // namespace unbd::nbd
