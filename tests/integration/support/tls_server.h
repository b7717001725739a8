// nbdkit --tls=require with credentials made for the test: a PSK over a
// Unix socket, or x509 over TCP with client certificates checked.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "integration/support/nbdkit.h"

namespace unbd::test {

// Credentials from support/make-tls-credentials.sh (certtool, psktool).
struct Credentials {
    std::string dir;
    Credentials() {
        char tmpl[] = "/tmp/unbd-pki.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        const std::string cmd = std::string(UNBD_SOURCE_DIR) + "/tests/integration/support/make-tls-credentials.sh " +
                                dir + " localhost";
        REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "make-tls-credentials.sh failed (is gnutls-bin installed?)");
    }
    ~Credentials() { (void)!std::system(("rm -rf " + dir).c_str()); }
};

struct TlsServer {
    Credentials pki;
    std::unique_ptr<NbdkitProcess> server;
    std::string uri;  // nbds, for unbd and libnbd alike
    TlsServer(bool psk, uint64_t disk_bytes) {
        if (psk) {
            server = std::make_unique<NbdkitProcess>(std::vector<std::string>{"memory", std::to_string(disk_bytes)}, false,
                                                     std::vector<std::string>{"--tls=require",
                                                                              "--tls-psk=" + pki.dir + "/keys.psk"});
            // nbd+unix:///?socket=S -> nbds+unix://alice@/?socket=S&tls-psk-file=F
            uri = "nbds+unix://alice@/" + server->uri().substr(std::string("nbd+unix:///").size()) +
                  "&tls-psk-file=" + pki.dir + "/keys.psk";
        } else {
            server = std::make_unique<NbdkitProcess>(
                std::vector<std::string>{"memory", std::to_string(disk_bytes)}, true,
                std::vector<std::string>{"--tls=require", "--tls-certificates=" + pki.dir, "--tls-verify-peer"});
            // nbd://127.0.0.1:P/ -> nbds://127.0.0.1:P/?tls-certificates=D
            uri = "nbds" + server->uri().substr(3) + "?tls-certificates=" + pki.dir;
        }
    }
};

}  // namespace unbd::test
