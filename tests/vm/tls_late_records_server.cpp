// An NBD server over TLS 1.3 (OpenSSL) that sends what GnuTLS servers do
// not: a NewSessionTicket or a KeyUpdate in the middle of the transmission
// phase, for vm/attach-ktls-late-records (the kTLS receive side must drop
// the tickets and treat a KeyUpdate as a lost connection, nbd/ktls.h).
//
//   tls-late-records-server PORT PKI-DIR SIZE TICKET-EVERY KEY-UPDATE-EVERY
//
// Listens on 127.0.0.1:PORT, a thread per connection, one memory export of
// SIZE bytes shared by all. Fixed newstyle, STARTTLS (PKI-DIR/server-cert.pem,
// server-key.pem), NBD_OPT_GO/INFO answered with the size, everything else
// unsupported. Every TICKET-EVERY-th command (0: never) is answered after a
// fresh session ticket, every KEY-UPDATE-EVERY-th after a KeyUpdate: each
// goes out just before that reply. Prints "ready" once listening.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<unsigned char> g_disk;
std::mutex g_disk_mutex;
unsigned g_ticket_every = 0, g_key_update_every = 0;
SSL_CTX* g_ctx = nullptr;

uint64_t get_be(const unsigned char* p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
}
void put_be(std::vector<unsigned char>& out, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// The byte stream before STARTTLS (fd) or after it (ssl).
struct Stream {
    int fd;
    SSL* ssl = nullptr;
    bool read(void* buf, std::size_t n) {
        auto* p = static_cast<unsigned char*>(buf);
        while (n > 0) {
            int r = ssl ? SSL_read(ssl, p, static_cast<int>(n)) : static_cast<int>(::read(fd, p, n));
            if (r <= 0) return false;
            p += r;
            n -= static_cast<std::size_t>(r);
        }
        return true;
    }
    bool write(const std::vector<unsigned char>& b) {
        std::size_t off = 0;
        while (off < b.size()) {
            int r = ssl ? SSL_write(ssl, b.data() + off, static_cast<int>(b.size() - off))
                        : static_cast<int>(::write(fd, b.data() + off, b.size() - off));
            if (r <= 0) return false;
            off += static_cast<std::size_t>(r);
        }
        return true;
    }
};

bool option_reply(Stream& s, uint32_t option, uint32_t type, const std::vector<unsigned char>& data = {}) {
    std::vector<unsigned char> b;
    put_be(b, 0x3e889045565a9ULL, 8);
    put_be(b, option, 4);
    put_be(b, type, 4);
    put_be(b, data.size(), 4);
    b.insert(b.end(), data.begin(), data.end());
    return s.write(b);
}

// Options until GO; false when the client went away or aborted.
bool negotiate(Stream& s) {
    std::vector<unsigned char> greeting;
    put_be(greeting, 0x4e42444d41474943ULL, 8);  // NBDMAGIC
    put_be(greeting, 0x49484156454f5054ULL, 8);  // IHAVEOPT
    put_be(greeting, 3, 2);                      // FIXED_NEWSTYLE | NO_ZEROES
    unsigned char client_flags[4];
    if (!s.write(greeting) || !s.read(client_flags, 4)) return false;
    for (;;) {
        unsigned char h[16];
        if (!s.read(h, sizeof h)) return false;
        const auto option = static_cast<uint32_t>(get_be(h + 8, 4));
        std::vector<unsigned char> data(get_be(h + 12, 4));
        if (!data.empty() && !s.read(data.data(), data.size())) return false;
        if (option == 5 && !s.ssl) {  // STARTTLS
            if (!option_reply(s, option, 1)) return false;
            s.ssl = SSL_new(g_ctx);
            SSL_set_fd(s.ssl, s.fd);
            if (SSL_accept(s.ssl) != 1) return false;
        } else if (option == 6 || option == 7) {  // INFO, GO
            std::vector<unsigned char> info;
            put_be(info, 0, 2);  // NBD_INFO_EXPORT
            put_be(info, g_disk.size(), 8);
            put_be(info, 1 | 4 | 8 | 256, 2);  // HAS_FLAGS | SEND_FLUSH | SEND_FUA | CAN_MULTI_CONN
            if (!option_reply(s, option, 3, info) || !option_reply(s, option, 1)) return false;
            if (option == 7) return true;
        } else if (option == 2) {  // ABORT
            option_reply(s, option, 1);
            return false;
        } else if (!option_reply(s, option, 0x80000001)) {  // ERR_UNSUP
            return false;
        }
    }
}

void transmission(Stream& s) {
    for (unsigned n = 1;; ++n) {
        unsigned char r[28];
        if (!s.read(r, sizeof r) || get_be(r, 4) != 0x25609513) return;
        const auto type = static_cast<uint16_t>(get_be(r + 6, 2));
        const uint64_t cookie = get_be(r + 8, 8), offset = get_be(r + 16, 8);
        const auto length = static_cast<uint32_t>(get_be(r + 24, 4));
        if (type == 2) return;  // DISC
        uint32_t error = 0;
        const bool in_range = offset <= g_disk.size() && length <= g_disk.size() - offset;
        std::vector<unsigned char> payload;
        if (type == 1) {  // WRITE
            payload.resize(length);
            if (!s.read(payload.data(), length)) return;
            if (!in_range) error = 22;
            else {
                std::lock_guard lock(g_disk_mutex);
                std::memcpy(g_disk.data() + offset, payload.data(), length);
            }
            payload.clear();
        } else if (type == 0) {  // READ
            if (!in_range) error = 22;
            else {
                std::lock_guard lock(g_disk_mutex);
                payload.assign(g_disk.begin() + static_cast<long>(offset),
                               g_disk.begin() + static_cast<long>(offset + length));
            }
        } else if (type != 3) {  // not FLUSH
            error = 22;
        }
        if (g_ticket_every && n % g_ticket_every == 0) SSL_new_session_ticket(s.ssl);
        if (g_key_update_every && n % g_key_update_every == 0) SSL_key_update(s.ssl, SSL_KEY_UPDATE_NOT_REQUESTED);
        std::vector<unsigned char> reply;
        put_be(reply, 0x67446698, 4);
        put_be(reply, error, 4);
        put_be(reply, cookie, 8);
        reply.insert(reply.end(), payload.begin(), payload.end());
        if (!s.write(reply)) return;
    }
}

void serve(int fd) {
    Stream s{fd};
    if (negotiate(s) && s.ssl) transmission(s);
    if (s.ssl) SSL_free(s.ssl);
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s PORT PKI-DIR SIZE TICKET-EVERY KEY-UPDATE-EVERY\n", argv[0]);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a client that drops the connection must not end the server
    const std::string pki = argv[2];
    g_disk.assign(std::strtoull(argv[3], nullptr, 10), 0);
    g_ticket_every = static_cast<unsigned>(std::atoi(argv[4]));
    g_key_update_every = static_cast<unsigned>(std::atoi(argv[5]));
    g_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(g_ctx, (pki + "/server-cert.pem").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_ctx, (pki + "/server-key.pem").c_str(), SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 16) != 0) {
        std::perror("bind/listen");
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
        int fd = ::accept(listener, nullptr, nullptr);
        if (fd >= 0) std::thread(serve, fd).detach();
    }
}
