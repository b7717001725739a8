#include "uring/probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <tuple>
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

// One socket pair, ring and registered buffer for every op tried. A
// loopback connection and a ring each cost `unbd attach` measurable time
// in the TCG guest; four of each were made before (DESIGN.md, Performance).
class Trials {
public:
    explicit Trials(int family) {
        std::tie(a_, b_) = make_pair(family);
        if (!a_ || !b_) return;
        try {
            ring_.emplace(RingOptions{.entries = 4, .fast_taskrun = false});
            table_.emplace(*ring_, 1);
            if (table_->set(0, buf_.data(), buf_.size()) != 0) table_.reset();
        } catch (...) {
            table_.reset();
            ring_.reset();
        }
    }

    // Runs one op on the pair; true when it moved all 8 bytes.
    bool run(Op op) {
        if (!table_) return false;
        bool moved = false;
        try {
            moved = run_once(op);
        } catch (...) {
            // An op may still be in flight: later trials must not reap its
            // completion, so they count as unsupported.
            table_.reset();
            ring_.reset();
        }
        drain(a_.get());  // a trial that failed halfway must not feed the next one
        drain(b_.get());
        return moved;
    }

private:
    bool run_once(Op op) {
        const bool sending = op == Op::WriteFixed || op == Op::SendFixed || op == Op::SendZcFixed;
        buf_.fill(0);
        std::memcpy(buf_.data(), "unbdprob", 8);
        if (!sending && ::send(b_.get(), "unbdprob", 8, MSG_NOSIGNAL) != 8) return false;
        const uint64_t addr = reinterpret_cast<uintptr_t>(buf_.data());
        io_uring_sqe* sqe = ring_->get_sqe();
        const Target t = Target::plain(a_.get());
        switch (op) {
            case Op::WriteFixed: prep_write_fixed(sqe, t, addr, 8, 0); break;
            case Op::ReadFixed: prep_read_fixed(sqe, t, addr + 8, 8, 0); break;
            case Op::SendFixed: prep_send_fixed(sqe, t, addr, 8, 0, 0); break;
            case Op::RecvFixed: prep_recv_fixed(sqe, t, addr + 8, 8, MSG_WAITALL, 0); break;
            case Op::SendZcFixed: prep_send_zc_fixed(sqe, t, addr, 8, 0, 0); break;
        }
        if (ring_->submit_and_wait(1) < 0) return false;
        int res = -1;
        bool more = false;
        ring_->drain_cqes([&](const io_uring_cqe& cqe) {
            if (cqe.flags & IORING_CQE_F_NOTIF) return;
            res = cqe.res;
            more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        });
        bool moved = false;
        if (res == 8 && sending) {
            char got[8];
            moved = ::recv(b_.get(), got, 8, MSG_WAITALL) == 8 && std::memcmp(got, "unbdprob", 8) == 0;
        } else if (res == 8) {
            moved = std::memcmp(buf_.data() + 8, "unbdprob", 8) == 0;
        }
        if (more) {
            // The notification comes once the kernel lets go of the buffer;
            // the peer reads first so that loopback can free the skb.
            ring_->submit_and_wait_timeout(1, 1'000'000);
            ring_->drain_cqes([](const io_uring_cqe&) {});
        }
        return moved;
    }

    static void drain(int fd) {
        char sink[64];
        while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
    }

    Fd a_, b_;
    alignas(64) std::array<char, 4096> buf_{};  // registered: outlives table_ and ring_
    std::optional<Ring> ring_;
    std::optional<BufferTable> table_;
};

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
    Trials trials(family);
    SocketOpSupport s;
    s.write_fixed = trials.run(Op::WriteFixed);
    s.read_fixed = trials.run(Op::ReadFixed);
    s.send_fixed = trials.run(Op::SendFixed);
    s.recv_fixed = trials.run(Op::RecvFixed);
    s.send_zc_fixed = with_send_zc && trials.run(Op::SendZcFixed);
    return s;
}

}  // namespace unbd::uring
