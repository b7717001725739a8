// The TLS 1.3 receive key OpenSSL 3.0 does not give the kernel (see
// tls13_receive_key.h).
#include "nbd/tls/tls13_receive_key.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <memory>

#include "common/error.h"
#include "common/hex.h"

namespace unbd::nbd {

namespace {

struct KdfFree {
    void operator()(EVP_KDF* k) const noexcept { EVP_KDF_free(k); }
    void operator()(EVP_KDF_CTX* c) const noexcept { EVP_KDF_CTX_free(c); }
};

// The suites kTLS takes for TLS 1.3, with their hash and key length.
struct Suite {
    uint16_t id;
    const char* hash;
    std::size_t key_length;
};
constexpr Suite kSuites[] = {
    {0x1301, "SHA256", 16},  // TLS_AES_128_GCM_SHA256
    {0x1302, "SHA384", 32},  // TLS_AES_256_GCM_SHA384
    {0x1303, "SHA256", 32},  // TLS_CHACHA20_POLY1305_SHA256 (kernel 5.11+)
};

}  // namespace

std::vector<unsigned char> hkdf_expand_label(const EVP_MD* hash, std::span<const unsigned char> secret,
                                             std::string_view label, std::size_t length) {
    // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label,
    // opaque context<0..255> = "".
    const std::string full = "tls13 " + std::string(label);
    std::vector<unsigned char> info;
    info.push_back(static_cast<unsigned char>(length >> 8));
    info.push_back(static_cast<unsigned char>(length & 0xff));
    info.push_back(static_cast<unsigned char>(full.size()));
    info.insert(info.end(), full.begin(), full.end());
    info.push_back(0);

    std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
    std::unique_ptr<EVP_KDF_CTX, KdfFree> ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    if (!ctx) throw Error("OpenSSL has no HKDF", ENOSYS);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(EVP_MD_get0_name(hash)), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret.data()),
                                          secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_end(),
    };
    std::vector<unsigned char> out(length);
    if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
        throw Error("HKDF-Expand-Label '" + std::string(label) + "' failed", EINVAL);
    return out;
}

void TlsRecordCounter::feed(std::span<const unsigned char> bytes) {
    while (!bytes.empty()) {
        if (body_left_ > 0) {
            const std::size_t n = std::min(body_left_, bytes.size());
            body_left_ -= n;
            bytes = bytes.subspan(n);
            if (body_left_ == 0) ++records_;
            continue;
        }
        header_[header_have_++] = bytes[0];
        bytes = bytes.subspan(1);
        if (header_have_ == sizeof header_) {
            header_have_ = 0;
            body_left_ = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
            if (body_left_ == 0) ++records_;
        }
    }
}

void Tls13ReceiveTracker::on_key_log_line(std::string_view line) {
    constexpr std::string_view kLabel = "SERVER_TRAFFIC_SECRET_0 ";
    if (line.substr(0, kLabel.size()) != kLabel) return;
    const std::size_t space = line.rfind(' ');
    secret_ = decode_hex(line.substr(space + 1)).value_or(std::vector<unsigned char>{});
    first_record_ = counter_.records();
    marked_off_boundary_ = !counter_.at_boundary();
}

std::variant<TlsTrafficKey, std::string> Tls13ReceiveTracker::key(uint16_t cipher_suite,
                                                                  bool openssl_holds_plaintext) const {
    const Suite* suite = nullptr;
    for (const Suite& s : kSuites)
        if (s.id == cipher_suite) suite = &s;
    if (!suite) return std::string("the kernel takes no TLS 1.3 suite with id ") + std::to_string(cipher_suite);
    if (secret_.empty()) return std::string("OpenSSL did not log the server's traffic secret");
    if (marked_off_boundary_ || !counter_.at_boundary() || openssl_holds_plaintext)
        return std::string("OpenSSL read part of a record the engine would need");
    const EVP_MD* hash = EVP_get_digestbyname(suite->hash);
    if (!hash) return std::string("OpenSSL has no ") + suite->hash;
    TlsTrafficKey k;
    k.cipher_suite = suite->id;
    k.key = hkdf_expand_label(hash, secret_, "key", suite->key_length);
    k.iv = hkdf_expand_label(hash, secret_, "iv", 12);
    k.record_sequence = counter_.records() - first_record_;
    return k;
}

}  // namespace unbd::nbd
