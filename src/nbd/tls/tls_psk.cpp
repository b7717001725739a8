// psktool's key files: one "user:hexkey" a line (nbdkit --tls-psk, qemu's
// keys.psk). The user's key is looked up; any other line is not judged.
#include <pwd.h>
#include <unistd.h>

#include <fstream>

#include "common/error.h"
#include "common/hex.h"
#include "nbd/tls/tls_session.h"

namespace unbd::nbd {

std::string psk_user(const TlsSettings& settings) {
    if (!settings.username.empty()) return settings.username;
    if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
    throw Error("no user name for the pre-shared key: give one with --tls-username or tls-username=", EINVAL);
}

PskKey read_psk_key(const std::string& file, const std::string& user) {
    std::ifstream in(file);
    if (!in) throw Error(errno_text("cannot read the PSK file " + file, errno), errno);
    std::string line;
    for (unsigned n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos || line.compare(0, colon, user) != 0 || colon != user.size()) continue;
        const std::string hex = line.substr(colon + 1);
        if (hex.empty() || hex.size() % 2 != 0)
            throw Error("bad key for user '" + user + "' in the PSK file " + file + " line " + std::to_string(n) +
                            " (expected an even number of hex digits)",
                        EINVAL);
        auto bytes = decode_hex(hex);
        if (!bytes)
            throw Error("bad key for user '" + user + "' in the PSK file " + file + " line " + std::to_string(n) +
                            " (not hex)",
                        EINVAL);
        PskKey k{user, std::move(*bytes)};
        if (k.key.size() > PSK_MAX_PSK_LEN)
            throw Error("the key of user '" + user + "' in the PSK file " + file + " is longer than " +
                            std::to_string(PSK_MAX_PSK_LEN) + " bytes",
                        EINVAL);
        return k;
    }
    throw Error("user '" + user + "' is not in the PSK file " + file + " (give another with --tls-username)", ENOENT);
}

}  // namespace unbd::nbd
