// kTLS facts (see ktls.h).
#include "nbd/ktls.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "common/file_text.h"

namespace unbd::nbd {

bool kernel_has_tls_ulp() {
    const std::string text = read_file_text("/proc/sys/net/ipv4/tcp_available_ulp").value_or("");
    const std::string_view list(text);
    for (std::size_t pos = 0; (pos = list.find("tls", pos)) != std::string_view::npos; pos += 3) {
        const bool starts = pos == 0 || list[pos - 1] == ' ';
        const bool ends = pos + 3 == list.size() || list[pos + 3] == ' ' || list[pos + 3] == '\n';
        if (starts && ends) return true;
    }
    return false;
}

bool socket_uses_ktls(int fd) {
    char name[16] = {};
    socklen_t len = sizeof name;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_ULP, name, &len) != 0) return false;
    return std::strncmp(name, "tls", sizeof name) == 0;
}

namespace {

// linux/tls.h's layout for one suite: salt = the IV's first 4 bytes (none
// for CHACHA20), iv = the rest, rec_seq big-endian.
template <typename Info>
std::string set_receive(int fd, Info info, uint16_t cipher_type, const TlsTrafficKey& k) {
    info.info.version = TLS_1_3_VERSION;
    info.info.cipher_type = cipher_type;
    constexpr std::size_t salt = sizeof info.salt;
    if (k.key.size() != sizeof info.key || k.iv.size() != salt + sizeof info.iv)
        return "the derived key does not fit the kernel's layout";
    std::memcpy(info.key, k.key.data(), sizeof info.key);
    std::memcpy(info.salt, k.iv.data(), salt);
    std::memcpy(info.iv, k.iv.data() + salt, sizeof info.iv);
    for (std::size_t i = 0; i < sizeof info.rec_seq; ++i)
        info.rec_seq[i] = static_cast<unsigned char>(k.record_sequence >> (8 * (sizeof info.rec_seq - 1 - i)));
    if (::setsockopt(fd, SOL_TLS, TLS_RX, &info, sizeof info) != 0)
        return errno_text("the kernel refused the TLS 1.3 receive key (setsockopt TLS_RX)", errno);
    // TLS 1.3 hides the record's type after optional padding, so the kernel
    // decrypts into its own buffer and copies -- unless told the peer does
    // not pad (GnuTLS servers do not; a padded record is still read, by a
    // retry). Linux 6.0+; older kernels refuse it, and only speed differs.
    const unsigned int no_pad = 1;
    (void)::setsockopt(fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &no_pad, sizeof no_pad);
    return {};
}

}  // namespace

std::string judge_control_record(unsigned type, std::span<const unsigned char> body) {
    if (type == 21) {  // alert: level, description
        if (body.size() >= 2 && body[1] == 0) return "the server closed the TLS connection (close_notify)";
        return "the server sent TLS alert " + std::string(body.size() >= 2 ? std::to_string(body[1]) : "?") +
               (body.size() >= 1 && body[0] == 2 ? " (fatal)" : "");
    }
    if (type != 22) return "the server sent an unexpected TLS record (content type " + std::to_string(type) + ")";
    // Handshake messages, each: type (1), length (3), body.
    while (!body.empty()) {
        if (body.size() < 4) return "the server sent a truncated TLS handshake message";
        const std::size_t len = static_cast<std::size_t>(body[1]) << 16 | static_cast<std::size_t>(body[2]) << 8 | body[3];
        if (body.size() < 4 + len) return "the server sent a truncated TLS handshake message";
        switch (body[0]) {
            case 4: break;  // NewSessionTicket: we never resume, nothing to keep
            case 24:
                return "the server updated its TLS 1.3 keys (KeyUpdate), which the kernel's receive side here "
                       "does not follow";
            default:
                return "the server sent TLS handshake message " + std::to_string(body[0]) + " after the handshake";
        }
        body = body.subspan(4 + len);
    }
    return {};
}

std::string take_control_record(int fd) {
    unsigned char data[16384 + 256];  // one record's plaintext at most
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(unsigned char))];
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) return errno_text("reading a TLS control record (recvmsg)", errno);
    if (n == 0) return "the server closed the connection";
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) {
            const unsigned type = *CMSG_DATA(c);
            if (type == 23) return "the kernel failed a receive, then returned data (EIO without a control record)";
            return judge_control_record(type, {data, static_cast<std::size_t>(n)});
        }
    }
    return "the kernel failed a receive on the TLS socket, and no control record explains it";
}

std::string install_receive_key(int fd, const TlsTrafficKey& key) {
    switch (key.cipher_suite) {
        case 0x1301: return set_receive(fd, tls12_crypto_info_aes_gcm_128{}, TLS_CIPHER_AES_GCM_128, key);
        case 0x1302: return set_receive(fd, tls12_crypto_info_aes_gcm_256{}, TLS_CIPHER_AES_GCM_256, key);
        case 0x1303:
            return set_receive(fd, tls12_crypto_info_chacha20_poly1305{}, TLS_CIPHER_CHACHA20_POLY1305, key);
        default: return "the kernel takes no TLS 1.3 suite with id " + std::to_string(key.cipher_suite);
    }
}

}  // namespace unbd::nbd
