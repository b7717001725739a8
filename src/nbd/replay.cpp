#include "nbd/replay.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>
#include <utility>
#include <vector>

#include "common/error.h"
#include "proto/nbd_wire.h"

namespace unbd::nbd {

namespace {

using Clock = std::chrono::steady_clock;

class BlockingSocket {
public:
    BlockingSocket(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}

    void send_all(const std::byte* p, std::size_t n) {
        while (n > 0) {
            wait(POLLOUT, "sending the replay");
            const ssize_t r = ::send(fd_, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r < 0) throw Error(errno_text("replay: sending to the server failed", errno), errno);
            p += r;
            n -= static_cast<std::size_t>(r);
        }
    }
    void recv_all(std::byte* p, std::size_t n) {
        while (n > 0) {
            wait(POLLIN, "waiting for a replay reply");
            const ssize_t r = ::recv(fd_, p, n, MSG_DONTWAIT);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r == 0) throw Error("replay: the server closed the connection", ECONNRESET);
            if (r < 0) throw Error(errno_text("replay: receiving from the server failed", errno), errno);
            p += r;
            n -= static_cast<std::size_t>(r);
        }
    }

private:
    void wait(short events, const char* what) {
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
        if (r == 0) throw Error(std::string("replay: timed out ") + what, ETIMEDOUT);
        if (r < 0 && errno != EINTR) throw Error(errno_text("replay: poll", errno), errno);
    }
    int fd_;
    std::chrono::milliseconds timeout_;
};

struct Command {
    proto::Request req;
    uint64_t data_offset = 0;  // into the entry's data
};

proto::Cmd command_of(BlockOp op) {
    switch (op) {
        case BlockOp::Trim: return proto::Cmd::Trim;
        case BlockOp::WriteZeroes: return proto::Cmd::WriteZeroes;
        default: return proto::Cmd::Write;
    }
}

}  // namespace

ReplayResult replay_log(int socket_fd, const DurabilityLog& log, const std::vector<DurabilityLog::Entry>& entries,
                        const ExportInfo& info, std::chrono::milliseconds timeout) {
    BlockingSocket sock(socket_fd, timeout);
    ReplayResult result;
    const uint32_t min = std::max<uint32_t>(1, info.block_size_min);
    const uint32_t max = std::max(min, std::min<uint32_t>(info.block_size_max, 4u << 20) / min * min);
    std::vector<std::byte> data;
    std::array<std::byte, proto::kRequestSize> header{};
    std::array<std::byte, proto::kSimpleReplySize> reply{};
    uint64_t cookie = 0;
    unsigned outstanding = 0;
    uint64_t window_bytes = 0;
    // The ranges of the commands in the window: the server may run them in
    // any order (nbdkit's parallel plugins do), so a command that overlaps
    // one of them waits for the window's replies, or an older write could
    // land after a newer one and undo an acknowledged write.
    std::vector<std::pair<uint64_t, uint64_t>> window_ranges;  // [begin, end)

    // Reads the reply of every command in the window; the window is then empty.
    const auto drain_window = [&] {
        for (; outstanding > 0; --outstanding) {
            sock.recv_all(reply.data(), reply.size());
            const auto r = proto::decode_simple_reply(std::span<const std::byte, proto::kSimpleReplySize>(reply));
            if (!r) throw Error("replay: protocol error: bad reply magic from the server", EPROTO);
            if (r->error != 0)
                throw Error(errno_text("replay: the server refused a replayed write",
                                       proto::errno_from_nbd_error(r->error)), EIO);
        }
        window_ranges.clear();
        window_bytes = 0;
    };
    const auto send = [&](const proto::Request& req, const std::byte* payload) {
        const uint64_t begin = req.offset, end = req.offset + req.length;
        const bool overlaps = std::any_of(window_ranges.begin(), window_ranges.end(),
                                          [&](const auto& w) { return begin < w.second && w.first < end; });
        if (overlaps) drain_window();
        window_ranges.emplace_back(begin, end);
        proto::encode_request(req, std::span<std::byte, proto::kRequestSize>(header));
        sock.send_all(header.data(), header.size());
        if (payload) sock.send_all(payload, req.length);
        ++outstanding;
        ++result.commands;
        window_bytes += req.length;
        // Bounded pipelining: the server's replies (16 bytes each) never fill
        // our receive buffer before we read them.
        if (outstanding >= 32 || window_bytes >= (8u << 20)) drain_window();
    };

    for (const auto& e : entries) {
        const bool has_data = e.op == BlockOp::Write;
        if (has_data) {
            data.resize(e.length);
            log.read_data(e, data.data());
        }
        for (uint64_t done = 0; done < e.length;) {
            proto::Request req;
            req.type = command_of(e.op);
            req.flags = e.op == BlockOp::WriteZeroes && e.no_hole ? proto::kCmdFlagNoHole : 0;
            req.cookie = ++cookie;
            req.offset = e.offset + done;
            req.length = static_cast<uint32_t>(std::min<uint64_t>(has_data ? max : 0xffffffffu / min * min,
                                                                  e.length - done));
            send(req, has_data ? data.data() + done : nullptr);
            done += req.length;
        }
        if (has_data) result.bytes += e.length;
    }
    drain_window();
    proto::Request flush;
    flush.type = proto::Cmd::Flush;
    flush.cookie = ++cookie;
    send(flush, nullptr);
    drain_window();
    return result;
}

}  // namespace unbd::nbd
