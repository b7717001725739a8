// unbd-tls.so's entry point: the TlsModule that makes OpenSSL's sessions
// and tunnels for the rest of unbd (nbd/tls_module.h).
#include <memory>
#include <string>

#include "nbd/tls/tls_session.h"
#include "nbd/tls/tls_tunnel.h"
#include "nbd/tls_module.h"

namespace unbd::nbd {
namespace {

class OpenSslModule final : public TlsModule {
public:
    std::unique_ptr<TlsChannel> open_session(const TlsSettings& settings, const std::string& host,
                                             std::string where) const override {
        return std::make_unique<TlsSession>(settings, host, std::move(where));
    }
    // Only this module makes sessions, so `session` is a TlsSession.
    std::unique_ptr<TlsPump> open_tunnel(std::unique_ptr<TlsChannel> session, Fd server) const override {
        std::unique_ptr<TlsSession> tls(static_cast<TlsSession*>(session.release()));
        return std::make_unique<TlsTunnel>(std::move(tls), std::move(server));
    }
};

}  // namespace
}  // namespace unbd::nbd

extern "C" __attribute__((visibility("default"))) const unbd::nbd::TlsModule* UNBD_TLS_MODULE_ENTRY() {
    static const unbd::nbd::OpenSslModule module;
    return &module;
}
