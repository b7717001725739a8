// HostileServer: a tiny NBD server on a Unix socket, in a thread, for what
// no real server does (bad magic, unknown cookies, duplicate replies,
// closing mid-payload, error codes outside the spec). It does a minimal
// fixed-newstyle handshake (NBD_OPT_GO / EXPORT_NAME), then hands the
// connection to a scenario function.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proto/nbd_wire.h"

namespace unbd::test {

struct ServerConn {
    int fd;
    // Next request, its WRITE payload (if any) read too. nullopt on EOF/error.
    std::optional<proto::Request> read_request(std::vector<std::byte>* payload = nullptr);
    bool send_reply(uint32_t error, uint64_t cookie, const std::byte* data = nullptr, std::size_t len = 0);
    bool send_raw(const void* p, std::size_t len);
};

class HostileServer {
public:
    using Scenario = std::function<void(ServerConn&)>;
    HostileServer(uint64_t size, uint16_t transmission_flags, Scenario scenario);
    ~HostileServer();
    HostileServer(const HostileServer&) = delete;
    HostileServer& operator=(const HostileServer&) = delete;

    const std::string& uri() const { return uri_; }
    // Waits until the scenario has returned (the client closed, or it ended).
    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    void serve(uint64_t size, uint16_t flags);
    std::string dir_, uri_;
    int listener_ = -1;
    Scenario scenario_;
    std::thread thread_;
};

}  // namespace unbd::test
