// kTLS facts (see ktls.h).
#include "nbd/ktls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>

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

}  // namespace unbd::nbd
