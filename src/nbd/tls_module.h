// TLS as the rest of unbd sees it: two interfaces and the module behind them.
//
// Everything that links OpenSSL (nbd/tls/) is built into unbd-tls.so, which
// `unbd` loads with dlopen the first time a URI asks for TLS. libssl and
// libcrypto are linked BIND_NOW, so loading them resolves ~3,800 symbol
// relocations and runs their constructors: 3.5 M of the 7.3 M instructions
// a plain `unbd list` ran (callgrind). Commands without TLS no longer pay
// for it (DESIGN.md, Performance: Where an attach goes).
//
// Contract:
// - tls_module() loads the module once per process and never unloads it
//   (the objects it made must outlive any dlclose). It looks next to the
//   running binary (the build tree), then in ../lib/unbd/ from it (every
//   install: /usr/bin/unbd -> /usr/lib/unbd/unbd-tls.so), and throws
//   unbd::Error naming both places when neither has it.
// - A binary that links the module's objects itself (the test programs)
//   uses them directly: the entry point below is a weak reference here.
// - The module and the binary come from one build: the interfaces are C++
//   classes, and the entry point's name carries a version (_v1), so a
//   module from an incompatible build is refused rather than called.
// - Nothing here runs OpenSSL; the comments on TlsSession and TlsTunnel
//   (nbd/tls/) say what each call does.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "common/fd.h"
#include "nbd/uri.h"

namespace unbd::nbd {

// One TLS connection during the NBD handshake (nbd/tls/tls_session.h).
class TlsChannel {
public:
    using Clock = std::chrono::steady_clock;
    virtual ~TlsChannel() = default;

    virtual void handshake(int fd, Clock::time_point deadline) = 0;
    virtual void write_all(std::span<const std::byte> data, Clock::time_point deadline) = 0;
    // Some bytes (at most data.size()); 0 at the server's end of stream.
    virtual std::size_t read_some(std::span<std::byte> data, Clock::time_point deadline) = 0;
    // "TLSv1.3, x509, TLS_AES_256_GCM_SHA384".
    virtual std::string description() const = 0;
    virtual bool wants_ktls() const = 0;
    virtual bool has_client_certificate() const = 0;
    // "" when the kernel now encrypts and decrypts, else why not.
    virtual std::string give_kernel_both_directions() = 0;
};

// The user-space TLS pump of one connection (nbd/tls/tls_tunnel.h).
class TlsPump {
public:
    virtual ~TlsPump() = default;

    virtual Fd take_engine_end() = 0;
    virtual const std::string& description() const = 0;
    // For fork(): stop the pump's thread where it is; start it again.
    virtual void pause() = 0;
    virtual void resume() = 0;
};

class TlsModule {
public:
    // `host`: checked against the certificate; `where`: for messages.
    virtual std::unique_ptr<TlsChannel> open_session(const TlsSettings& settings, const std::string& host,
                                                     std::string where) const = 0;
    // `session`: one open_session() made, handshake and NBD negotiation done.
    virtual std::unique_ptr<TlsPump> open_tunnel(std::unique_ptr<TlsChannel> session, Fd server) const = 0;

protected:
    ~TlsModule() = default;
};

// Loads unbd-tls.so on first use; throws unbd::Error when it cannot.
const TlsModule& tls_module();

}  // namespace unbd::nbd

// The module's one exported symbol; the suffix is its version, bumped
// whenever the interfaces above change.
#define UNBD_TLS_MODULE_ENTRY unbd_tls_module_v1
extern "C" const unbd::nbd::TlsModule* UNBD_TLS_MODULE_ENTRY();
