// kTLS facts (see ktls.h).
#include "nbd/ktls.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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
    return {};
}

}  // namespace

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
