// Kernel TLS (the `tls` TCP ULP, CONFIG_TLS) as the engine sees it: whether
// the kernel has it, and whether a socket runs it. --tls-mode=ktls puts the
// keys there (OpenSSL does, nbd/tls/tls_session.h); the engine then sends and
// receives on that socket itself, and must speak the way kTLS accepts:
// - sendmsg takes no MSG_WAITALL: tls_sw_sendmsg() refuses any flag beyond
//   MSG_MORE/DONTWAIT/NOSIGNAL/EOR/... with EOPNOTSUPP (seen on Linux 7.3;
//   TCP ignores the flag). The linked fixed-buffer send chains rely on it
//   for short-send safety, so on kTLS the session sends them stepwise:
//   one unlinked SQE at a time, a short send resent from where it stopped
//   (send_chain.cpp). Zero copy then works: WRITE_FIXED or send with
//   FIXED_BUF encrypts straight from the request's pages, and READ_FIXED
//   or recv with FIXED_BUF decrypts straight into them. Copy mode sends
//   one SENDMSG per chain without the flag. SEND_ZC is refused: kTLS
//   encrypts into buffers of its own, so there is nothing to gain.
// - TLS 1.3 (Linux 5.1+): OpenSSL 3.0 sets the send key only; the receive
//   key is ours to set (tls/tls13_receive_key.h, install_receive_key below).
// - a record that is not data (a TLS 1.3 NewSessionTicket or KeyUpdate, an
//   alert; renegotiation is off) fails the engine's recv or read with EIO
//   (no data was copied; the record waits at the head of the queue). The
//   reply reader then takes that one record with recvmsg and a
//   TLS_GET_RECORD_TYPE cmsg (take_control_record) and judges it
//   (judge_control_record): session tickets are dropped and the receive
//   goes on; a KeyUpdate (new keys we would have to follow, and answer when
//   asked) or an alert is a lost connection, and the reconnect makes a new
//   TLS session.
// Receive offload needs Linux 4.17+.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace unbd::nbd {

// What the kernel needs for one direction of TLS 1.3 (linux/tls.h's
// tls12_crypto_info_*: salt = iv[0..4), iv = iv[4..12)).
struct TlsTrafficKey {
    uint16_t cipher_suite = 0;  // 0x1301 AES-128-GCM, 0x1302 AES-256-GCM, 0x1303 CHACHA20-POLY1305
    std::vector<unsigned char> key;
    std::vector<unsigned char> iv;  // 12 bytes
    uint64_t record_sequence = 0;
};

// "tls" is among /proc/sys/net/ipv4/tcp_available_ulp (module loaded or built in).
bool kernel_has_tls_ulp();
// The socket's TCP ULP is "tls" (false for Unix sockets, plain TCP, errors).
bool socket_uses_ktls(int fd);
// What a non-data record means for the session: "" to drop it and go on
// receiving, else why the connection is over. `type`: the TLS content type
// (21 alert, 22 handshake); `body`: the record's plaintext.
std::string judge_control_record(unsigned type, std::span<const unsigned char> body);
// Reads the non-data record waiting at the head of a kTLS socket's receive
// queue and judges it; "" when it was dropped, else why the connection is
// over (a failed recvmsg included).
std::string take_control_record(int fd);

// Gives the kernel the TLS 1.3 receive key of a socket whose send side is
// already kTLS (so the ULP is set); "" on success, else why, as a clause.
std::string install_receive_key(int fd, const TlsTrafficKey& key);

}  // namespace unbd::nbd
