// TlsTunnel: user-space TLS for the data path, as a pump between the engine
// and the server. The engine gets one end of a socketpair (AF_UNIX stream)
// and speaks plain NBD on it with its usual io_uring sends and receives; a
// thread of this tunnel moves bytes between the other end and the TLS
// connection (OpenSSL over the server socket). nbd-client's TLS works the
// same way; DESIGN.md (TLS) says why this comes before memory BIOs on the
// ring, and what it costs: one more copy and one more thread wake-up each way.
//
// Lifetime and shutdown:
// - The tunnel owns the TLS session, the server socket, its end of the pair
//   and its thread. The engine end is handed out once (take_engine_end) and
//   belongs to whoever takes it.
// - The thread ends by itself when either side ends: the engine closing (or
//   shutting down) its end -- what it had written is still encrypted and sent
//   (for up to 2 s), then close_notify -- or the server closing, failing or
//   breaking TLS -- what was decrypted is still delivered, then the pair is
//   closed, so the engine sees EOF as it would on a plain socket.
// - The destructor asks the thread to end (draining what the engine already
//   wrote for up to 1 s) and joins it. No work outlives the object.
// - fork(): threads do not survive it, so `attach` pauses the tunnel before
//   forking (the thread returns without touching the connection) and the
//   child resumes it; the parent's paused copy only closes its fds (it must
//   not signal the eventfd it now shares with the child).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "nbd/tls/tls_session.h"

namespace unbd::nbd {

class TlsTunnel final : public TlsPump {
public:
    // `server`: the socket the session ran its handshake on, non-blocking.
    TlsTunnel(std::unique_ptr<TlsSession> session, Fd server);
    ~TlsTunnel() override;
    TlsTunnel(const TlsTunnel&) = delete;
    TlsTunnel& operator=(const TlsTunnel&) = delete;

    // The engine's end of the pair, blocking mode; valid once.
    Fd take_engine_end() override;
    const std::string& description() const override { return description_; }

    // Stops the thread where it is, leaving the connection as it is (no
    // close_notify, no shutdown); resume() starts it again. For fork().
    void pause() override;
    void resume() override;

private:
    void run() noexcept;
    void start();

    std::unique_ptr<TlsSession> session_;
    Fd server_;
    Fd local_;   // our end of the pair
    Fd engine_;  // theirs, until taken
    Fd stop_;    // eventfd: destructor or pause() -> thread
    std::atomic<bool> pausing_{false};  // set before stop_ is signalled
    // Bytes on their way, kept across pause()/resume().
    struct Pending {
        std::vector<std::byte> buf;
        std::size_t off = 0, len = 0;
        bool empty() const { return off == len; }
        void consumed(std::size_t n);
    };
    Pending up_, down_;  // engine -> server, server -> engine
    std::string description_;
    std::thread thread_;
};

}  // namespace unbd::nbd
