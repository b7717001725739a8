// NBD URI parsing: the forms of doc/uri.md, and errors that name the bad part.
#include <doctest/doctest.h>

#include "common/error.h"
#include "nbd/uri.h"

using unbd::nbd::parse_uri;
using unbd::nbd::Transport;
using unbd::nbd::TlsMode;

namespace {
std::string error_of(const std::string& text) {
    try {
        parse_uri(text);
    } catch (const unbd::Error& e) {
        return e.what();
    }
    return "(no error)";
}
}  // namespace

TEST_CASE("uri: nbd://host/export with the default port") {
    auto u = parse_uri("nbd://example.com/disk");
    CHECK(u.transport == Transport::Tcp);
    CHECK(u.host == "example.com");
    CHECK(u.port == 10809);
    CHECK(u.export_name == "disk");
    CHECK(u.to_string() == "nbd://example.com:10809/disk");
}

TEST_CASE("uri: explicit port, empty and missing paths, double slash") {
    CHECK(parse_uri("nbd://h:1234/x").port == 1234);
    CHECK(parse_uri("nbd://h/").export_name.empty());
    CHECK(parse_uri("nbd://h").export_name.empty());
    CHECK(parse_uri("nbd://h//disk").export_name == "/disk");
    CHECK(parse_uri("NBD://h/x").export_name == "x");  // scheme is case-insensitive
    CHECK(parse_uri("nbd://user@h:99/x").host == "h");
}

TEST_CASE("uri: IPv6 literals") {
    auto u = parse_uri("nbd://[::1]:10810/a");
    CHECK(u.host == "::1");
    CHECK(u.port == 10810);
    CHECK(u.to_string() == "nbd://[::1]:10810/a");
    CHECK(parse_uri("nbd://[fe80::1]/").port == 10809);
    CHECK(parse_uri("nbd://[fe80::1%25eth0]/").host == "fe80::1%eth0");
}

TEST_CASE("uri: percent-decoding of the export name and the socket") {
    CHECK(parse_uri("nbd://h/my%20disk").export_name == "my disk");
    CHECK(parse_uri("nbd://h/a%2Fb%2fc").export_name == "a/b/c");
    auto u = parse_uri("nbd+unix:///x?socket=/tmp/a%20b.sock");
    CHECK(u.socket_path == "/tmp/a b.sock");
    auto abstract = parse_uri("nbd+unix:///?socket=%00/abstract");
    CHECK(abstract.socket_path == std::string("\0/abstract", 10));
}

TEST_CASE("uri: nbd+unix") {
    auto u = parse_uri("nbd+unix:///disk?socket=/run/nbd.sock");
    CHECK(u.transport == Transport::Unix);
    CHECK(u.socket_path == "/run/nbd.sock");
    CHECK(u.export_name == "disk");
    CHECK(u.to_string() == "nbd+unix:///disk?socket=/run/nbd.sock");
    CHECK(parse_uri("nbd+unix://?socket=/s").export_name.empty());
    CHECK(parse_uri(u.to_string()).socket_path == u.socket_path);  // round trip
}

TEST_CASE("uri: round trip through to_string with odd characters") {
    auto u = parse_uri("nbd://h/a%20b%3Fc%23d");
    CHECK(u.export_name == "a b?c#d");
    CHECK(parse_uri(u.to_string()).export_name == u.export_name);
}

TEST_CASE("uri: a percent-encoded host prints as the same host (fuzz: uri)") {
    // tests/fuzz/corpus/uri/regress-host-slash: the decoded host was printed
    // raw, so "nbd://%eeeee%ee%2Fe" came back with host "\xee\xee\xee" and
    // export "e:10809/" -- the form `unbd recover` reads from the state file.
    for (const char* text : {"nbd://%eeeee%ee%2Fe", "nbd://x%40y/disk", "nbd://a%3Fb:99/", "nbd://[a%5Db]/"}) {
        CAPTURE(text);
        const auto u = parse_uri(text);
        const auto back = parse_uri(u.to_string());
        CHECK(back.host == u.host);
        CHECK(back.port == u.port);
        CHECK(back.export_name == u.export_name);
    }
    CHECK(parse_uri("nbd://x%40y/disk").to_string() == "nbd://x%40y:10809/disk");
    CHECK(parse_uri("nbd://server.example-1/d").to_string() == "nbd://server.example-1:10809/d");
}

TEST_CASE("uri: nbds:// and nbds+unix:// with TLS parameters") {
    auto u = parse_uri("nbds://alice@h:1234/x?tls-psk-file=/k/keys.psk&tls-hostname=srv.example");
    CHECK(u.tls);
    CHECK(u.transport == Transport::Tcp);
    CHECK(u.port == 1234);
    CHECK(u.tls_settings.username == "alice");
    CHECK(u.tls_settings.psk_file == "/k/keys.psk");
    CHECK(u.tls_settings.hostname == "srv.example");
    CHECK(u.tls_settings.verify_peer);
    CHECK(u.display() == "nbds://h:1234/x");
    CHECK(u.to_string() == "nbds://h:1234/x?tls-psk-file=/k/keys.psk&tls-username=alice&tls-hostname=srv.example");
    CHECK(parse_uri(u.to_string()).tls_settings == u.tls_settings);  // round trip

    auto x = parse_uri("NBDS+UNIX:///d?socket=/s&tls-certificates=/pki&tls-verify-peer=0&tls-type=x509");
    CHECK(x.tls);
    CHECK(x.transport == Transport::Unix);
    CHECK(x.tls_settings.certificates == "/pki");
    CHECK(!x.tls_settings.verify_peer);
    CHECK(x.to_string() == "nbds+unix:///d?socket=/s&tls-certificates=/pki&tls-verify-peer=0");
    CHECK(parse_uri(x.to_string()).tls_settings == x.tls_settings);
    CHECK(parse_uri("nbds://h/?tls-verify-peer=true").tls_settings.verify_peer);
    CHECK(parse_uri("nbds://h/?tls-type=psk&tls-username=bob").tls_settings.username == "bob");
    CHECK(parse_uri("nbds://h/").to_string() == "nbds://h:10809/");
    // Without TLS a user name means nothing: dropped, not printed.
    CHECK(parse_uri("nbd://user@h/x").tls_settings.username.empty());
    CHECK(parse_uri("nbds+unix://alice@/d?socket=/s").tls_settings.username == "alice");  // libnbd's form
    CHECK(error_of("nbd+unix://alice@/d?socket=/s").find("take no host") != std::string::npos);
}

TEST_CASE("uri: tls-mode survives the round trip (the state file, recover and reconnects use it)") {
    CHECK(parse_uri("nbds://h/x").tls_settings.mode == TlsMode::Auto);
    auto k = parse_uri("nbds://h/x?tls-mode=ktls&tls-psk-file=/k");
    CHECK(k.tls_settings.mode == TlsMode::Ktls);
    CHECK(k.to_string() == "nbds://h:10809/x?tls-psk-file=/k&tls-mode=ktls");
    CHECK(parse_uri(k.to_string()).tls_settings == k.tls_settings);
    auto u = parse_uri("nbds+unix:///d?socket=/s&tls-mode=userspace");
    CHECK(u.tls_settings.mode == TlsMode::Userspace);
    CHECK(parse_uri(u.to_string()).tls_settings.mode == TlsMode::Userspace);
    CHECK(parse_uri("nbds://h/x?tls-mode=auto").to_string() == "nbds://h:10809/x");  // auto is the default
    CHECK(error_of("nbds://h/x?tls-mode=kernel").find("bad 'tls-mode' in the URI 'kernel' (expected auto, ktls or "
                                                      "userspace)") != std::string::npos);
    CHECK(error_of("nbd://h/x?tls-mode=ktls").find("needs TLS") != std::string::npos);
}

TEST_CASE("uri: bad TLS parameters are refused clearly") {
    CHECK(error_of("nbd://h/x?tls-type=x509").find("needs TLS: use an nbds://") != std::string::npos);
    CHECK(error_of("nbd+unix:///x?socket=/s&tls-certificates=/d").find("needs TLS") != std::string::npos);
    CHECK(error_of("nbds://h/x?tls-type=anon").find("anonymous TLS) is not supported") != std::string::npos);
    CHECK(error_of("nbds://h/x?tls-type=foo").find("bad tls-type 'foo'") != std::string::npos);
    CHECK(error_of("nbds://h/x?tls-verify-peer=maybe").find("bad value 'maybe' for 'tls-verify-peer'") !=
          std::string::npos);
    CHECK(error_of("nbds://h/x?tls-psk-file=").find("empty 'tls-psk-file='") != std::string::npos);
    CHECK(error_of("nbds://h/x?tls-cipher=x").find("unknown query parameter 'tls-cipher'") != std::string::npos);
}

TEST_CASE("uri: errors name the bad part") {
    CHECK(error_of("http://h/x").find("unsupported URI scheme 'http'") != std::string::npos);
    CHECK(error_of("/dev/nbd0").find("is not an NBD URI") != std::string::npos);
    CHECK(error_of("nbd:///x").find("missing host") != std::string::npos);
    CHECK(error_of("nbd://h:0/x").find("bad port '0'") != std::string::npos);
    CHECK(error_of("nbd://h:65536/x").find("bad port '65536'") != std::string::npos);
    CHECK(error_of("nbd://h:12ab/x").find("bad port '12ab'") != std::string::npos);
    CHECK(error_of("nbd://h:/x").find("empty port") != std::string::npos);
    CHECK(error_of("nbd://[::1/x").find("missing ']'") != std::string::npos);
    CHECK(error_of("nbd://[::1]x/").find("after the IPv6 address") != std::string::npos);
    CHECK(error_of("nbd://::1/x").find("brackets") != std::string::npos);
    CHECK(error_of("nbd://h/a%zzb").find("bad percent-encoding '%zz' in the export name") != std::string::npos);
    CHECK(error_of("nbd://h/a%2").find("bad percent-encoding '%2'") != std::string::npos);
    CHECK(error_of("nbd://h/a%00b").find("NUL") != std::string::npos);
    CHECK(error_of("nbd+unix:///x").find("lacks '?socket=PATH'") != std::string::npos);
    CHECK(error_of("nbd+unix://host/x?socket=/s").find("take no host, but 'host'") != std::string::npos);
    CHECK(error_of("nbd://h/x?socket=/s").find("'socket' is only valid with nbd+unix") != std::string::npos);
    CHECK(error_of("nbd://h/x?foo=1").find("unknown query parameter 'foo'") != std::string::npos);
    CHECK(error_of("nbd://h/x#frag").find("fragment '#frag'") != std::string::npos);
    CHECK(error_of("nbd://h/" + std::string(4097, 'a')).find("longer than 4096") != std::string::npos);
}

TEST_CASE("uri: experimental x- parameters are ignored") {
    CHECK(parse_uri("nbd://h/x?x-foo=1").export_name == "x");
}
