#include "daemon/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/fd.h"

namespace unbd::daemon {

bool notify_systemd(const std::string& state) noexcept {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || *path == '\0') return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
        spdlog::warn("NOTIFY_SOCKET '{}' is not a socket path", path);
        return false;
    }
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    const ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&addr), addr_len);
    if (n != static_cast<ssize_t>(state.size())) {
        spdlog::warn("cannot notify systemd at {}: {}", path, std::strerror(errno));
        return false;
    }
    return true;
}

}  // namespace unbd::daemon
