// The TLS 1.3 receive key we give the kernel (nbd/tls/tls13_receive_key.h),
// checked without a kernel that has TLS: after a real NBD handshake over
// TLS 1.3 with nbdkit (GnuTLS) through TlsSession in ktls mode, the key and
// sequence number it reports must open the server's next record -- a READ
// reply read raw off the socket and decrypted here (AES-GCM or ChaCha20-Poly1305). A wrong
// key, IV or record count fails the tag check.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <variant>

#include "common/fd.h"
#include "integration/support/tls_server.h"
#include "nbd/handshake.h"
#include "nbd/tls/tls_session.h"
#include "nbd/uri.h"

using namespace unbd;
using namespace unbd::test;

namespace {

Fd connect_plain(const nbd::Uri& uri) {
    if (uri.transport == nbd::Transport::Unix) {
        Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, uri.socket_path.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        return fd;
    }
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uri.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

void read_exactly(int fd, void* buf, std::size_t n) {
    auto* p = static_cast<unsigned char*>(buf);
    while (n > 0) {
        ssize_t r = ::recv(fd, p, n, 0);
        REQUIRE(r > 0);
        p += r;
        n -= static_cast<std::size_t>(r);
    }
}

// The handshake machine driven by `write` and `read` until it is done or
// waits for TLS.
template <typename Write, typename Read>
void drive(nbd::Handshake& hs, Write write, Read read) {
    std::vector<std::byte> in;
    while (!hs.done() && !hs.tls_pending()) {
        auto out = hs.take_output();
        if (!out.empty()) write(out);
        REQUIRE_MESSAGE(!hs.failed(), hs.error());
        if (hs.done() || hs.tls_pending()) break;
        in.resize(hs.bytes_needed());
        std::size_t got = read(std::span<std::byte>(in));
        REQUIRE(got > 0);
        hs.feed(std::span<const std::byte>(in.data(), got));
    }
}

// TLS 1.3 record protection (RFC 8446 5.2-5.3) undone: the plaintext with
// its inner content type last, or nothing when the tag does not match.
std::optional<std::vector<unsigned char>> open_record(const nbd::TlsTrafficKey& k, uint64_t seq,
                                                      const unsigned char (&header)[5],
                                                      const std::vector<unsigned char>& body) {
    REQUIRE(body.size() > 16);
    std::vector<unsigned char> nonce = k.iv;
    for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<unsigned char>(seq >> (8 * (7 - i)));
    const EVP_CIPHER* cipher = k.cipher_suite == 0x1301   ? EVP_aes_128_gcm()
                               : k.cipher_suite == 0x1302 ? EVP_aes_256_gcm()
                                                          : EVP_chacha20_poly1305();
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int len = 0;
    std::vector<unsigned char> out(body.size());
    const int text = static_cast<int>(body.size() - 16);
    REQUIRE(EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) == 1);
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) == 1);
    REQUIRE(EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, k.key.data(), nonce.data()) == 1);
    REQUIRE(EVP_DecryptUpdate(ctx.get(), nullptr, &len, header, 5) == 1);
    REQUIRE(EVP_DecryptUpdate(ctx.get(), out.data(), &len, body.data(), text) == 1);
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, 16,
                                const_cast<unsigned char*>(body.data()) + text) == 1);
    if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) return std::nullopt;
    out.resize(static_cast<std::size_t>(text));
    while (!out.empty() && out.back() == 0) out.pop_back();  // padding
    return out;
}

// `priority`: GnuTLS overrides for the server (a cipher limited), or "".
void check_receive_key(bool psk, const std::string& priority = "", uint16_t want_suite = 0) {
    CAPTURE(psk);
    CAPTURE(priority);
    std::string conf;
    if (!priority.empty()) {
        conf = "/tmp/unbd-prio." + std::to_string(::getpid());
        FILE* f = std::fopen(conf.c_str(), "w");
        REQUIRE(f);
        std::fprintf(f, "[overrides]\n%s", priority.c_str());
        std::fclose(f);
        ::setenv("GNUTLS_SYSTEM_PRIORITY_FILE", conf.c_str(), 1);
    }
    TlsServer s(psk, 1 << 20);
    if (!priority.empty()) {
        ::unsetenv("GNUTLS_SYSTEM_PRIORITY_FILE");
        std::remove(conf.c_str());
    }
    nbd::Uri uri = nbd::parse_uri(s.uri);
    uri.tls_settings.mode = nbd::TlsMode::Ktls;
    Fd fd = connect_plain(uri);

    nbd::Handshake hs({nbd::Handshake::Goal::Export, "", false, uri.display(), true});
    drive(
        hs, [&](const std::vector<std::byte>& out) { REQUIRE(::send(fd.get(), out.data(), out.size(), 0) == ssize_t(out.size())); },
        [&](std::span<std::byte> in) {
            read_exactly(fd.get(), in.data(), in.size());
            return in.size();
        });
    REQUIRE(hs.tls_pending());
    nbd::TlsSession tls(uri.tls_settings, uri.host, uri.display());
    const auto deadline = nbd::TlsSession::Clock::now() + std::chrono::seconds(20);
    tls.handshake(fd.get(), deadline);
    hs.tls_started();
    drive(
        hs, [&](const std::vector<std::byte>& out) { tls.write_all(out, deadline); },
        [&](std::span<std::byte> in) { return tls.read_some(in, deadline); });
    REQUIRE(hs.done());
    CHECK(tls.description().rfind("TLSv1.3, ", 0) == 0);

    auto key_or_why = tls.kernel_receive_key();
    if (auto* why = std::get_if<std::string>(&key_or_why)) FAIL(*why);
    const auto key = std::get<nbd::TlsTrafficKey>(key_or_why);
    CAPTURE(key.cipher_suite);
    CAPTURE(key.record_sequence);
    if (want_suite) CHECK(key.cipher_suite == want_suite);
    // The GO replies came under this key: the count cannot still be 0.
    CHECK(key.record_sequence >= 1);

    // NBD_CMD_READ of 512 bytes at 0, through OpenSSL; its reply read raw.
    unsigned char request[28] = {0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    request[27] = 0x00, request[26] = 0x02;  // length 512, big-endian
    tls.write_all(std::as_bytes(std::span(request)), deadline);
    unsigned char header[5];
    read_exactly(fd.get(), header, sizeof header);
    CHECK(header[0] == 23);  // TLS 1.3's outer type for everything encrypted
    std::vector<unsigned char> body(static_cast<std::size_t>(header[3]) << 8 | header[4]);
    read_exactly(fd.get(), body.data(), body.size());

    auto plain = open_record(key, key.record_sequence, header, body);
    REQUIRE_MESSAGE(plain.has_value(), "the derived key and sequence number do not open the server's next record");
    REQUIRE(plain->size() >= 17);
    CHECK(plain->back() == 23);  // application data
    const unsigned char simple_reply[] = {0x67, 0x44, 0x66, 0x98, 0, 0, 0, 0};
    CHECK(std::memcmp(plain->data(), simple_reply, sizeof simple_reply) == 0);
    // Off by one record, the same bytes must not open: the check can fail.
    CHECK_FALSE(open_record(key, key.record_sequence + 1, header, body).has_value());
}

}  // namespace

TEST_CASE("ktls: the TLS 1.3 receive key we derive opens nbdkit's next record (PSK over Unix, x509 over TCP)") {
    check_receive_key(true);
    check_receive_key(false);
    // Each suite the kernel takes, whatever this host's default is.
    const std::string no_chacha = "tls-disabled-cipher = chacha20-poly1305\n";
    check_receive_key(false, no_chacha + "tls-disabled-cipher = aes-256-gcm\n", 0x1301);
    check_receive_key(false, no_chacha + "tls-disabled-cipher = aes-128-gcm\n", 0x1302);
    check_receive_key(false,
                      "tls-disabled-cipher = aes-256-gcm\ntls-disabled-cipher = aes-128-gcm\n"
                      "tls-disabled-cipher = aes-256-ccm\ntls-disabled-cipher = aes-128-ccm\n",
                      0x1303);
}
