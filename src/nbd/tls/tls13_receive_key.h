// The kernel's TLS 1.3 receive key, found by us: OpenSSL 3.0 and 3.1
// (Debian bookworm has 3.0) put TLS 1.3's *send* key in the kernel but
// never the receive key (that came in 3.2), so --tls-mode=ktls on TLS 1.3
// would have only one direction. The kernel takes the receive key from
// anyone (setsockopt SOL_TLS/TLS_RX, Linux 5.1+ for 1.3), so we give it:
//
// - the server's application traffic secret, from OpenSSL's key-log
//   callback ("SERVER_TRAFFIC_SECRET_0 <client random> <secret>", logged
//   when the client has read the server's Finished);
// - key and IV from that secret, as RFC 8446 7.3 says:
//   HKDF-Expand-Label(secret, "key" / "iv", "", length), with the suite's hash;
// - the record sequence number: how many records OpenSSL read after the
//   Finished (session tickets and the NBD option replies), counted from the
//   bytes its socket BIO returned. Without read-ahead OpenSSL reads exactly
//   one record at a time, so the count is exact; a partial record in hand,
//   or plaintext OpenSSL still holds, means it is not, and we refuse.
//
// Contract: Tls13ReceiveTracker is fed by TlsSession's callbacks (key log,
// BIO reads) from the first byte of the connection; key() is asked once the
// NBD handshake is over and says either the key with its sequence number or
// why there is none. Pure: no sockets here (ktls.h installs the key).
// GnuTLS servers send their tickets right after the handshake, before the
// first NBD reply, so OpenSSL reads (and counts) them; what comes after the
// handoff is the reply reader's (nbd/ktls.h).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nbd/ktls.h"

namespace unbd::nbd {

// RFC 8446 7.1 HKDF-Expand-Label with an empty context.
std::vector<unsigned char> hkdf_expand_label(const EVP_MD* hash, std::span<const unsigned char> secret,
                                             std::string_view label, std::size_t length);

// Counts whole TLS records in a byte stream (5-byte header: type, version,
// 16-bit length; then the body).
class TlsRecordCounter {
public:
    void feed(std::span<const unsigned char> bytes);
    uint64_t records() const { return records_; }
    // Between two records: no header or body half read.
    bool at_boundary() const { return header_have_ == 0 && body_left_ == 0; }

private:
    uint64_t records_ = 0;
    unsigned char header_[5] = {};
    std::size_t header_have_ = 0;
    std::size_t body_left_ = 0;
};

class Tls13ReceiveTracker {
public:
    // A line of OpenSSL's key log; only the server's first application
    // traffic secret matters. Marks where its records begin.
    void on_key_log_line(std::string_view line);
    // Bytes OpenSSL read from the socket.
    void on_bytes_read(std::span<const unsigned char> bytes) { counter_.feed(bytes); }

    // The receive key for `cipher_suite` (SSL_CIPHER_get_protocol_id), or why
    // not as a clause. `openssl_holds_plaintext`: SSL_has_pending.
    std::variant<TlsTrafficKey, std::string> key(uint16_t cipher_suite, bool openssl_holds_plaintext) const;

private:
    TlsRecordCounter counter_;
    std::vector<unsigned char> secret_;
    uint64_t first_record_ = 0;     // records() when the secret was logged
    bool marked_off_boundary_ = false;  // the secret came mid-record: the count would be wrong
};

}  // namespace unbd::nbd
