// NBD URI parsing (NetworkBlockDevice/nbd doc/uri.md). Every error names the
// part of the URI that is wrong, because the user typed it.
#include "nbd/uri.h"

#include <charconv>
#include <string_view>

#include "common/error.h"
#include "proto/nbd_wire.h"

namespace unbd::nbd {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX; `what` names the URI part for the error message.
std::string percent_decode(std::string_view in, const char* what) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
        int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            throw usage_error("bad percent-encoding '" + std::string(in.substr(i, 3)) + "' in the " + what + " of the URI");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

bool is_unreserved(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string percent_encode(std::string_view in, std::string_view keep) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : in) {
        auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(ch) || keep.find(ch) != std::string_view::npos) {
            out += ch;
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

uint16_t parse_port(std::string_view text) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
        throw usage_error("bad port '" + std::string(text) + "' in the URI (expected 1-65535)");
    return static_cast<uint16_t>(value);
}

// authority = [userinfo@]host[:port]; host may be an RFC 2732 [IPv6] literal.
void parse_authority(std::string_view auth, Uri& uri) {
    if (auto at = auth.rfind('@'); at != std::string_view::npos) {  // the TLS (PSK) user name
        uri.tls_settings.username = percent_decode(auth.substr(0, at), "user name");
        auth.remove_prefix(at + 1);
    }
    std::string_view port;
    if (!auth.empty() && auth.front() == '[') {
        auto close = auth.find(']');
        if (close == std::string_view::npos)
            throw usage_error("unterminated IPv6 address '" + std::string(auth) + "' in the URI (missing ']')");
        uri.host = percent_decode(auth.substr(1, close - 1), "IPv6 address");
        auto rest = auth.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                throw usage_error("unexpected '" + std::string(rest) + "' after the IPv6 address in the URI");
            port = rest.substr(1);
            if (port.empty()) throw usage_error("empty port after ':' in the URI");
        }
        if (uri.host.empty()) throw usage_error("empty IPv6 address '[]' in the URI");
    } else {
        auto colon = auth.find(':');
        if (colon != std::string_view::npos) {
            if (auth.find(':', colon + 1) != std::string_view::npos)
                throw usage_error("host '" + std::string(auth) + "' looks like an IPv6 address: write it in brackets, "
                            "e.g. nbd://[::1]/");
            port = auth.substr(colon + 1);
            if (port.empty()) throw usage_error("empty port after ':' in the URI");
            auth = auth.substr(0, colon);
        }
        uri.host = percent_decode(auth, "host");
    }
    if (!port.empty()) uri.port = parse_port(port);
}

bool parse_bool(const std::string& key, const std::string& value) {
    if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
    if (value == "0" || value == "false" || value == "no" || value == "off") return false;
    throw usage_error("bad value '" + value + "' for '" + key + "' in the URI (expected 0 or 1)");
}

void parse_tls_parameter(const std::string& key, const std::string& value, Uri& uri) {
    if (!uri.tls)
        throw usage_error("query parameter '" + key + "' needs TLS: use an nbds:// or nbds+unix:// URI");
    auto non_empty = [&] {
        if (value.empty()) throw usage_error("empty '" + key + "=' in the URI");
        return value;
    };
    TlsSettings& t = uri.tls_settings;
    if (key == "tls-certificates") {
        t.certificates = non_empty();
    } else if (key == "tls-psk-file") {
        t.psk_file = non_empty();
    } else if (key == "tls-username") {
        t.username = non_empty();
    } else if (key == "tls-hostname") {
        t.hostname = non_empty();
    } else if (key == "tls-verify-peer") {
        t.verify_peer = parse_bool(key, value);
    } else if (key == "tls-mode") {
        t.mode = parse_tls_mode(value, "'tls-mode' in the URI");
    } else if (key == "tls-type") {
        // The type follows from the credentials given; only check it.
        if (value != "x509" && value != "psk") {
            if (value == "anon")
                throw usage_error("tls-type=anon (anonymous TLS) is not supported: use x509 or psk");
            throw usage_error("bad tls-type '" + value + "' in the URI (expected x509 or psk)");
        }
    } else {
        throw usage_error("unknown query parameter '" + key + "' in the URI");
    }
}

void parse_query(std::string_view query, Uri& uri) {
    while (!query.empty()) {
        auto amp = query.find_first_of("&;");
        auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty()) continue;
        auto eq = item.find('=');
        auto key = percent_decode(item.substr(0, eq), "query");
        auto value = eq == std::string_view::npos ? std::string{} : percent_decode(item.substr(eq + 1), "query");
        if (key == "socket") {
            if (uri.transport != Transport::Unix)
                throw usage_error("query parameter 'socket' is only valid with nbd+unix:// URIs");
            if (value.empty()) throw usage_error("empty 'socket=' in the URI");
            uri.socket_path = value;
        } else if (key.starts_with("tls-")) {
            parse_tls_parameter(key, value, uri);
        } else if (!key.starts_with("x-")) {  // x-*: experimental, may be ignored (uri.md)
            throw usage_error("unknown query parameter '" + key + "' in the URI");
        }
    }
}

}  // namespace

Uri parse_uri(const std::string& text) {
    std::string_view rest = text;
    auto sep = rest.find("://");
    if (sep == std::string_view::npos)
        throw usage_error("'" + text + "' is not an NBD URI (expected nbd://HOST[:PORT]/EXPORT or "
                    "nbd+unix:///EXPORT?socket=PATH)");
    std::string scheme(rest.substr(0, sep));
    for (auto& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    rest.remove_prefix(sep + 3);

    Uri uri;
    uri.tls = scheme == "nbds" || scheme == "nbds+unix";
    if (scheme == "nbd" || scheme == "nbds")
        uri.transport = Transport::Tcp;
    else if (scheme == "nbd+unix" || scheme == "nbds+unix")
        uri.transport = Transport::Unix;
    else
        throw usage_error("unsupported URI scheme '" + scheme + "' (expected nbd, nbd+unix, nbds or nbds+unix)");

    if (auto hash = rest.find('#'); hash != std::string_view::npos)
        throw usage_error("unexpected fragment '" + std::string(rest.substr(hash)) + "' in the URI");
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

    if (uri.transport == Transport::Tcp) {
        if (authority.empty()) throw usage_error("missing host in '" + text + "' (expected nbd://HOST[:PORT]/EXPORT)");
        parse_authority(authority, uri);
        if (uri.host.empty()) throw usage_error("missing host in '" + text + "' (expected nbd://HOST[:PORT]/EXPORT)");
    } else if (!authority.empty() && !(uri.tls && authority.back() == '@' &&
                                       authority.find('@') == authority.size() - 1)) {
        // nbds+unix://alice@/...: a PSK user name and no host (libnbd's form).
        throw usage_error("nbd+unix:// URIs take no host, but '" + std::string(authority) +
                    "' was given (expected nbd+unix:///EXPORT?socket=PATH)");
    }

    if (uri.transport == Transport::Unix && !authority.empty())
        uri.tls_settings.username = percent_decode(authority.substr(0, authority.size() - 1), "user name");
    uri.export_name = percent_decode(path, "export name");
    if (uri.export_name.find('\0') != std::string::npos) throw usage_error("the export name in the URI contains a NUL byte");
    if (uri.export_name.size() > proto::kMaxStringLength)
        throw usage_error("the export name in the URI is longer than 4096 bytes");
    parse_query(query, uri);
    if (uri.transport == Transport::Unix && uri.socket_path.empty())
        throw usage_error("nbd+unix:// URI '" + text + "' lacks '?socket=PATH'");
    if (!uri.tls) uri.tls_settings = {};  // a user name means nothing without TLS
    return uri;
}

std::string Uri::display() const {
    std::string scheme = tls ? "nbds" : "nbd";
    std::string name = percent_encode(export_name, "/");
    if (transport == Transport::Unix)
        return scheme + "+unix:///" + name + "?socket=" + percent_encode(socket_path, "/");
    // The host is encoded too: a decoded '/', '@' or ':' printed raw would
    // parse back as another host (found by tests/fuzz/uri_fuzz.cpp).
    std::string h = host.find(':') != std::string::npos ? "[" + percent_encode(host, ":") + "]"
                                                        : percent_encode(host, "");
    return scheme + "://" + h + ":" + std::to_string(port) + "/" + name;
}

std::string Uri::to_string() const {
    std::string text = display();
    if (!tls) return text;
    const TlsSettings& t = tls_settings;
    std::string query;
    auto add = [&](const char* key, const std::string& value) {
        query += (query.empty() && transport == Transport::Tcp ? "?" : "&") + std::string(key) + "=" +
                 percent_encode(value, "/");
    };
    if (!t.certificates.empty()) add("tls-certificates", t.certificates);
    if (!t.psk_file.empty()) add("tls-psk-file", t.psk_file);
    if (!t.username.empty()) add("tls-username", t.username);
    if (!t.hostname.empty()) add("tls-hostname", t.hostname);
    if (!t.verify_peer) add("tls-verify-peer", "0");
    if (t.mode != TlsMode::Auto) add("tls-mode", name(t.mode));
    return text + query;
}

const char* name(TlsMode mode) {
    switch (mode) {
        case TlsMode::Ktls: return "ktls";
        case TlsMode::Userspace: return "userspace";
        case TlsMode::Auto: break;
    }
    return "auto";
}

TlsMode parse_tls_mode(const std::string& text, const std::string& what) {
    for (TlsMode m : {TlsMode::Auto, TlsMode::Ktls, TlsMode::Userspace})
        if (text == name(m)) return m;
    throw usage_error("bad " + what + " '" + text + "' (expected auto, ktls or userspace)");
}

}  // namespace unbd::nbd
