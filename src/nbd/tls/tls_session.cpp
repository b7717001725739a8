// TlsSession (see tls_session.h): context set-up, the PSK callbacks, the
// deadline-bounded I/O of the NBD handshake, and OpenSSL failures turned
// into sentences.
#include "nbd/tls/tls_session.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "nbd/ktls.h"

namespace unbd::nbd {

namespace {

bool file_exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The oldest error on OpenSSL's queue as text, and the queue cleared.
std::string ssl_error_text() {
    unsigned long e = ERR_peek_error();
    std::string text;
    if (e != 0) {
        const char* r = ERR_reason_error_string(e);
        text = r ? r : "error " + std::to_string(e);
    }
    ERR_clear_error();
    return text;
}

[[noreturn]] void setup_failed(const std::string& what) {
    std::string why = ssl_error_text();
    throw Error(what + (why.empty() ? "" : ": " + why), EINVAL);
}

}  // namespace

// The peer closed without close_notify: OpenSSL 3 reports it as an error
// with reason UNEXPECTED_EOF (older ones as SYSCALL with an empty queue).
bool closed_without_notify(int ssl_error) {
    if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return true;
    return ssl_error == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

namespace {

bool is_ip_address(const std::string& host) {
    return host.find(':') != std::string::npos ||
           std::all_of(host.begin(), host.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

}  // namespace

// OpenSSL calls these with the SSL; the session is its app data.
struct TlsCallbacks {
    static TlsSession* of(SSL* ssl) { return static_cast<TlsSession*>(SSL_get_app_data(ssl)); }

    // TLS 1.3: the key as a resumable session with a SHA-256 suite, which is
    // what GnuTLS servers (nbdkit, qemu-nbd) derive PSK binders with.
    static int use_session(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen,
                           SSL_SESSION** sess) {
        TlsSession* self = of(ssl);
        *sess = nullptr;
        static constexpr unsigned char kAes128GcmSha256[] = {0x13, 0x01};
        const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
        if (!self || !cipher) return 0;
        if (md && md != SSL_CIPHER_get_handshake_digest(cipher)) return 1;  // no PSK for this suite
        SSL_SESSION* s = SSL_SESSION_new();
        if (!s || !SSL_SESSION_set1_master_key(s, self->psk_key_.key.data(), self->psk_key_.key.size()) ||
            !SSL_SESSION_set_cipher(s, cipher) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
            SSL_SESSION_free(s);
            return 0;
        }
        *id = reinterpret_cast<const unsigned char*>(self->psk_key_.identity.data());
        *idlen = self->psk_key_.identity.size();
        *sess = s;
        return 1;
    }

    // TLS 1.2 PSK suites.
    static unsigned int client(SSL* ssl, const char*, char* identity, unsigned int max_identity, unsigned char* psk,
                               unsigned int max_psk) {
        TlsSession* self = of(ssl);
        if (!self) return 0;
        const PskKey& k = self->psk_key_;
        if (k.identity.size() + 1 > max_identity || k.key.size() > max_psk) return 0;
        std::memcpy(identity, k.identity.c_str(), k.identity.size() + 1);
        std::memcpy(psk, k.key.data(), k.key.size());
        return static_cast<unsigned int>(k.key.size());
    }

    // --tls-mode=ktls: the TLS 1.3 receive key comes from here...
    static void key_log(const SSL* ssl, const char* line) {
        if (TlsSession* self = of(const_cast<SSL*>(ssl))) self->receive_tracker_.on_key_log_line(line);
    }
    // ...and its record sequence number from every byte read off the socket.
    static long bytes_read(BIO* bio, int oper, const char* data, size_t, int, long, int ret, size_t* processed) {
        auto* self = reinterpret_cast<TlsSession*>(BIO_get_callback_arg(bio));
        if (self && oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed)
            self->receive_tracker_.on_bytes_read({reinterpret_cast<const unsigned char*>(data), *processed});
        return ret;
    }
};

TlsSession::TlsSession(const TlsSettings& settings, const std::string& host, std::string where)
    : where_(std::move(where)),
      psk_(!settings.psk_file.empty()),
      verify_peer_(settings.verify_peer),
      ktls_(settings.mode == TlsMode::Ktls) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) setup_failed("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    if (ktls_) {
        // OpenSSL hands the keys to the kernel itself (TCP_ULP "tls",
        // SOL_TLS) when the handshake's keys are set, on the socket BIO of
        // SSL_set_fd -- both directions for TLS 1.2, only the send side for
        // 1.3 before OpenSSL 3.2: that receive key we find and set ourselves
        // (tls13_receive_key.h), so we watch the key log and the bytes read.
        // No renegotiation: once the engine reads the socket, a handshake
        // record would only be an EIO from recv (a lost connection, then a
        // reconnect).
        SSL_CTX_set_options(ctx_.get(), SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_keylog_callback(ctx_.get(), &TlsCallbacks::key_log);
    }
    SSL_CTX_set_mode(ctx_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (psk_) {
        psk_key_ = read_psk_key(settings.psk_file, psk_user(settings));
        SSL_CTX_set_psk_use_session_callback(ctx_.get(), &TlsCallbacks::use_session);
        SSL_CTX_set_psk_client_callback(ctx_.get(), &TlsCallbacks::client);
        // PSK only: a server that falls back to a certificate finds no trust
        // anchor here, so the handshake fails instead of authenticating less.
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_set_cipher_list(ctx_.get(), "PSK:ECDHE-PSK:DHE-PSK:!NULL") != 1)
            setup_failed("cannot select the TLS 1.2 PSK cipher suites");
    } else {
        const std::string dir = settings.certificates;
        if (!dir.empty()) {
            const std::string ca = dir + "/ca-cert.pem";
            if (verify_peer_) {
                if (!file_exists(ca))
                    throw Error("no CA certificate " + ca + " (tls-certificates=DIR needs DIR/ca-cert.pem)", ENOENT);
                if (SSL_CTX_load_verify_locations(ctx_.get(), ca.c_str(), nullptr) != 1)
                    setup_failed("cannot load the CA certificate " + ca);
            }
            const std::string cert = dir + "/client-cert.pem", key = dir + "/client-key.pem";
            if (file_exists(cert) && file_exists(key)) {
                if (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.c_str()) != 1)
                    setup_failed("cannot load the client certificate " + cert);
                if (SSL_CTX_use_PrivateKey_file(ctx_.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
                    setup_failed("cannot load the client key " + key);
                if (SSL_CTX_check_private_key(ctx_.get()) != 1)
                    setup_failed("the client key " + key + " does not match " + cert);
                client_certificate_ = true;
            }
        } else if (verify_peer_ && SSL_CTX_set_default_verify_paths(ctx_.get()) != 1) {
            setup_failed("cannot load the system's CA certificates");
        }
        SSL_CTX_set_verify(ctx_.get(), verify_peer_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    }

    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_) setup_failed("cannot create a TLS connection");
    SSL_set_app_data(ssl_.get(), this);
    checked_host_ = settings.hostname.empty() ? host : settings.hostname;
    if (!checked_host_.empty()) {
        if (!is_ip_address(checked_host_)) SSL_set_tlsext_host_name(ssl_.get(), checked_host_.c_str());
        // The host name (or address) the certificate must name; for Unix
        // sockets without tls-hostname only the chain is checked, as libnbd.
        if (!psk_ && verify_peer_ && SSL_set1_host(ssl_.get(), checked_host_.c_str()) != 1)
            setup_failed("bad TLS host name '" + checked_host_ + "'");
    }
}

TlsSession::~TlsSession() = default;

void TlsSession::wait(int ssl_error, Clock::time_point deadline, const char* during) {
    pollfd p{fd_, static_cast<short>(ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            throw Error(std::string("timed out ") + during + " with " + where_, ETIMEDOUT);
        int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
        if (n > 0) return;
        if (n < 0 && errno != EINTR) throw Error(errno_text("poll on the TLS socket", errno), errno);
    }
}

void TlsSession::handshake(int fd, Clock::time_point deadline) {
    fd_ = fd;
    if (SSL_set_fd(ssl_.get(), fd) != 1) setup_failed("cannot attach TLS to the socket");
    if (ktls_) {
        BIO* rbio = SSL_get_rbio(ssl_.get());
        BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
        BIO_set_callback_ex(rbio, &TlsCallbacks::bytes_read);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl_.get());
        if (r == 1) return;
        int err = SSL_get_error(ssl_.get(), r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            throw Error(explain_failure("during the TLS handshake", err), ECONNREFUSED);
        wait(err, deadline, "in the TLS handshake");
    }
}

void TlsSession::write_all(std::span<const std::byte> data, Clock::time_point deadline) {
    while (!data.empty()) {
        ERR_clear_error();
        int r = SSL_write(ssl_.get(), data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
        if (r > 0) {
            data = data.subspan(static_cast<std::size_t>(r));
            continue;
        }
        int err = SSL_get_error(ssl_.get(), r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            throw Error(explain_failure("sending the handshake", err), EPIPE);
        wait(err, deadline, "sending the handshake");
    }
}

std::size_t TlsSession::read_some(std::span<std::byte> data, Clock::time_point deadline) {
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(ssl_.get(), data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
        if (r > 0) return static_cast<std::size_t>(r);
        int err = SSL_get_error(ssl_.get(), r);
        if (err == SSL_ERROR_ZERO_RETURN) return 0;
        if (closed_without_notify(err)) return 0;
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            throw Error(explain_failure("reading the handshake", err), EPROTO);
        wait(err, deadline, "waiting for the server's handshake");
    }
}

std::variant<TlsTrafficKey, std::string> TlsSession::kernel_receive_key() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_.get());
    if (SSL_version(ssl_.get()) != TLS1_3_VERSION || !c) return std::string("not TLS 1.3");
    return receive_tracker_.key(SSL_CIPHER_get_protocol_id(c), SSL_has_pending(ssl_.get()) != 0);
}

std::string TlsSession::give_kernel_both_directions() {
    SSL* s = ssl_.get();
    const bool tx = BIO_get_ktls_send(SSL_get_wbio(s)) != 0;
    bool rx = BIO_get_ktls_recv(SSL_get_rbio(s)) != 0;
    if (!tx && !rx) {
        if (!kernel_has_tls_ulp())
            return "the kernel has no TLS support (no 'tls' in /proc/sys/net/ipv4/tcp_available_ulp: CONFIG_TLS, "
                   "modprobe tls)";
        const SSL_CIPHER* c = SSL_get_current_cipher(s);
        return std::string("the kernel took neither direction for cipher ") + (c ? SSL_CIPHER_get_name(c) : "?") +
               " (kTLS offloads AES-GCM, AES-CCM and CHACHA20-POLY1305 suites)";
    }
    if (tx && !rx && SSL_version(s) == TLS1_3_VERSION) {
        // OpenSSL before 3.2 leaves TLS 1.3's receive side to us.
        auto key = kernel_receive_key();
        if (auto* why = std::get_if<std::string>(&key)) return "no TLS 1.3 receive key for the kernel: " + *why;
        if (std::string why = install_receive_key(fd_, std::get<TlsTrafficKey>(key)); !why.empty()) return why;
        rx = true;
    }
    if (!tx || !rx)
        return std::string("the kernel took only the ") + (tx ? "send" : "receive") +
               " direction (both are needed: the engine reads and writes the socket itself)";
    // With both directions in the kernel, OpenSSL must hold nothing: bytes
    // it read ahead would never reach the engine.
    if (SSL_has_pending(s))
        return "OpenSSL holds bytes received after the handshake, which the engine would never see";
    return {};
}

void TlsSession::close_notify() noexcept {
    if (ssl_ && fd_ >= 0) (void)SSL_shutdown(ssl_.get());
    ERR_clear_error();
}

std::string TlsSession::description() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_.get());
    return std::string(SSL_get_version(ssl_.get())) + ", " + (psk_ ? "psk" : "x509") + ", " +
           (c ? SSL_CIPHER_get_name(c) : "?");
}

std::string TlsSession::explain_failure(const char* during, int err) const {
    const unsigned long e = ERR_peek_error();
    const int reason = e ? ERR_GET_REASON(e) : 0;
    const std::string detail = ssl_error_text();
    const std::string on = " (" + where_ + ")";
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        const long v = SSL_get_verify_result(ssl_.get());
        switch (v) {
            case X509_V_ERR_HOSTNAME_MISMATCH:
            case X509_V_ERR_IP_ADDRESS_MISMATCH:
                return "the server's certificate does not match the host name '" + checked_host_ + "'" + on +
                       ": give the name it has with tls-hostname= or --tls-hostname";
            case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
            case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
            case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                return "the server's certificate is signed by an unknown CA" + on +
                       ": not by the ca-cert.pem in --tls-certificates (or the system's CAs)";
            case X509_V_ERR_CERT_HAS_EXPIRED: return "the server's certificate has expired" + on;
            case X509_V_ERR_CERT_NOT_YET_VALID: return "the server's certificate is not valid yet" + on;
            case X509_V_OK:
                if (psk_) return "the server sent a certificate instead of accepting the pre-shared key" + on;
                break;
            default: break;
        }
        return std::string("the server's certificate was refused: ") + X509_verify_cert_error_string(v) + on;
    }
    if (psk_ && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING && std::string_view(during).find("handshake") != std::string_view::npos)
        return "the server refused the pre-shared key of user '" + psk_key_.identity + "'" + on +
               ": wrong key, or a user it does not know (it closed the connection during the TLS handshake)";
    if (psk_ && (reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR || reason == SSL_R_SSLV3_ALERT_BAD_RECORD_MAC ||
                 reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE || reason == SSL_R_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY ||
                 reason == SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER || reason == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC))
        return "the server refused the pre-shared key of user '" + psk_key_.identity + "'" + on +
               ": wrong key, or a user it does not know (" + detail + ")";
    if (!psk_ && (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                  reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA))
        return "the server refused our client certificate" + on + " (" + detail +
               "): put client-cert.pem and client-key.pem signed by its CA in --tls-certificates";
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
        return std::string("the server closed the connection ") + during + on +
               (psk_ ? ": wrong pre-shared key, or a user it does not know?" : "");
    return std::string("TLS failed ") + during + on + (detail.empty() ? "" : ": " + detail);
}

}  // namespace unbd::nbd
