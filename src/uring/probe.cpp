#include "uring/probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <utility>

#include "common/fd.h"
#include "uring/registered.h"
#include "uring/ring.h"
#include "uring/sqe.h"

namespace unbd::uring {

namespace {

std::pair<Fd, Fd> make_pair(int family) {
    if (family == AF_UNIX) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {};
        return {Fd(sv[0]), Fd(sv[1])};
    }
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return {};
    Fd a(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!a || ::connect(a.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
    Fd b(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    return {std::move(a), std::move(b)};
}

enum class Op { WriteFixed, ReadFixed, SendFixed, RecvFixed, SendZcFixed };

// Runs one op on a fresh socket pair; true when it moved all 8 bytes.
bool try_op(int family, Op op) {
    auto [a, b] = make_pair(family);
    if (!a || !b) return false;
    try {
        Ring ring(RingOptions{.entries = 4, .fast_taskrun = false});
        BufferTable table(ring, 1);
        alignas(64) std::array<char, 4096> buf{};
        if (table.set(0, buf.data(), buf.size()) != 0) return false;
        const bool sending = op == Op::WriteFixed || op == Op::SendFixed || op == Op::SendZcFixed;
        std::memcpy(buf.data(), "unbdprob", 8);
        if (!sending && ::send(b.get(), "unbdprob", 8, MSG_NOSIGNAL) != 8) return false;
        const uint64_t addr = reinterpret_cast<uintptr_t>(buf.data());
        io_uring_sqe* sqe = ring.get_sqe();
        const Target t = Target::plain(a.get());
        switch (op) {
            case Op::WriteFixed: prep_write_fixed(sqe, t, addr, 8, 0); break;
            case Op::ReadFixed: prep_read_fixed(sqe, t, addr + 8, 8, 0); break;
            case Op::SendFixed: prep_send_fixed(sqe, t, addr, 8, 0, 0); break;
            case Op::RecvFixed: prep_recv_fixed(sqe, t, addr + 8, 8, MSG_WAITALL, 0); break;
            case Op::SendZcFixed: prep_send_zc_fixed(sqe, t, addr, 8, 0, 0); break;
        }
        if (ring.submit_and_wait(1) < 0) return false;
        int res = -1;
        bool more = false;
        ring.drain_cqes([&](const io_uring_cqe& cqe) {
            if (cqe.flags & IORING_CQE_F_NOTIF) return;
            res = cqe.res;
            more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        });
        bool moved = false;
        if (res == 8 && sending) {
            char got[8];
            moved = ::recv(b.get(), got, 8, MSG_WAITALL) == 8 && std::memcmp(got, "unbdprob", 8) == 0;
        } else if (res == 8) {
            moved = std::memcmp(buf.data() + 8, "unbdprob", 8) == 0;
        }
        if (more) {
            // The notification comes once the kernel lets go of the buffer;
            // the peer reads first so that loopback can free the skb.
            ring.submit_and_wait_timeout(1, 1'000'000);
            ring.drain_cqes([](const io_uring_cqe&) {});
        }
        return moved;
    } catch (...) {
        return false;
    }
}

}  // namespace

std::string SocketOpSupport::describe() const {
    std::string s;
    auto add = [&](bool on, const char* n) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += n;
    };
    add(write_fixed, "write_fixed");
    add(read_fixed, "read_fixed");
    add(send_fixed, "send_fixed");
    add(recv_fixed, "recv_fixed");
    add(send_zc_fixed, "send_zc_fixed");
    return s.empty() ? "none" : s;
}

SocketOpSupport probe_socket_ops(int family, bool with_send_zc) {
    SocketOpSupport s;
    s.write_fixed = try_op(family, Op::WriteFixed);
    s.read_fixed = try_op(family, Op::ReadFixed);
    s.send_fixed = try_op(family, Op::SendFixed);
    s.recv_fixed = try_op(family, Op::RecvFixed);
    s.send_zc_fixed = with_send_zc && try_op(family, Op::SendZcFixed);
    return s;
}

}  // namespace unbd::uring
