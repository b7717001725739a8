#include "integration/support/hostile_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>

namespace unbd::test {

namespace {

bool read_full(int fd, void* p, std::size_t len) {
    auto* b = static_cast<char*>(p);
    while (len > 0) {
        ssize_t n = ::recv(fd, b, len, 0);
        if (n <= 0) return false;
        b += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

bool write_full(int fd, const void* p, std::size_t len) {
    const auto* b = static_cast<const char*>(p);
    while (len > 0) {
        ssize_t n = ::send(fd, b, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        b += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

template <typename T>
void put_be(std::vector<std::byte>& v, T x) {
    std::byte b[sizeof(T)];
    proto::store_be<T>(b, x);
    v.insert(v.end(), b, b + sizeof(T));
}

// Fixed newstyle, server side: answers GO/INFO with NBD_INFO_EXPORT + ACK,
// EXPORT_NAME with the short reply, everything else with ERR_UNSUP.
bool handshake(int fd, uint64_t size, uint16_t flags) {
    std::vector<std::byte> hello;
    put_be<uint64_t>(hello, proto::kNbdMagic);
    put_be<uint64_t>(hello, proto::kIHaveOpt);
    put_be<uint16_t>(hello, proto::kFlagFixedNewstyle | proto::kFlagNoZeroes);
    if (!write_full(fd, hello.data(), hello.size())) return false;
    uint32_t client_flags;
    if (!read_full(fd, &client_flags, 4)) return false;
    for (;;) {
        std::byte hdr[16];
        if (!read_full(fd, hdr, 16)) return false;
        const uint32_t opt = proto::load_be<uint32_t>(hdr + 8);
        const uint32_t len = proto::load_be<uint32_t>(hdr + 12);
        std::vector<std::byte> data(len);
        if (len && !read_full(fd, data.data(), len)) return false;
        if (opt == static_cast<uint32_t>(proto::Opt::ExportName)) {
            std::vector<std::byte> r;
            put_be<uint64_t>(r, size);
            put_be<uint16_t>(r, flags);
            return write_full(fd, r.data(), r.size());
        }
        auto reply = [&](uint32_t type, const std::vector<std::byte>& payload) {
            std::vector<std::byte> r;
            put_be<uint64_t>(r, proto::kOptReplyMagic);
            put_be<uint32_t>(r, opt);
            put_be<uint32_t>(r, type);
            put_be<uint32_t>(r, static_cast<uint32_t>(payload.size()));
            r.insert(r.end(), payload.begin(), payload.end());
            return write_full(fd, r.data(), r.size());
        };
        if (opt == static_cast<uint32_t>(proto::Opt::Go) || opt == static_cast<uint32_t>(proto::Opt::Info)) {
            std::vector<std::byte> info;
            put_be<uint16_t>(info, 0);
            put_be<uint64_t>(info, size);
            put_be<uint16_t>(info, flags);
            if (!reply(static_cast<uint32_t>(proto::Rep::Info), info)) return false;
            if (!reply(static_cast<uint32_t>(proto::Rep::Ack), {})) return false;
            if (opt == static_cast<uint32_t>(proto::Opt::Go)) return true;
        } else if (opt == static_cast<uint32_t>(proto::Opt::Abort)) {
            reply(static_cast<uint32_t>(proto::Rep::Ack), {});
            return false;
        } else if (!reply(static_cast<uint32_t>(proto::Rep::ErrUnsup), {})) {
            return false;
        }
    }
}

}  // namespace

std::optional<proto::Request> ServerConn::read_request(std::vector<std::byte>* payload) {
    std::byte hdr[proto::kRequestSize];
    if (!read_full(fd, hdr, sizeof hdr)) return std::nullopt;
    auto r = proto::decode_request(std::span<const std::byte, proto::kRequestSize>(hdr, sizeof hdr));
    if (!r) return std::nullopt;
    if (r->type == proto::Cmd::Write) {
        std::vector<std::byte> data(r->length);
        if (!read_full(fd, data.data(), data.size())) return std::nullopt;
        if (payload) *payload = std::move(data);
    }
    return r;
}

bool ServerConn::send_reply(uint32_t error, uint64_t cookie, const std::byte* data, std::size_t len) {
    std::byte hdr[proto::kSimpleReplySize];
    proto::encode_simple_reply(proto::SimpleReply{error, cookie},
                               std::span<std::byte, proto::kSimpleReplySize>(hdr, sizeof hdr));
    return write_full(fd, hdr, sizeof hdr) && (len == 0 || write_full(fd, data, len));
}

bool ServerConn::send_raw(const void* p, std::size_t len) { return write_full(fd, p, len); }

HostileServer::HostileServer(uint64_t size, uint16_t flags, Scenario scenario) : scenario_(std::move(scenario)) {
    char tmpl[] = "/tmp/unbd-hostile.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    const std::string path = dir_ + "/sock";
    uri_ = "nbd+unix:///?socket=" + path;
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 4) != 0)
        throw std::runtime_error("hostile server: cannot listen on " + path);
    thread_ = std::thread([this, size, flags] { serve(size, flags); });
}

void HostileServer::serve(uint64_t size, uint16_t flags) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) return;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    if (handshake(fd, size, flags)) {
        ServerConn c{fd};
        scenario_(c);
    }
    ::close(fd);
}

HostileServer::~HostileServer() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

}  // namespace unbd::test
