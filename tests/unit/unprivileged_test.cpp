// What an unprivileged device cannot do (daemon/unprivileged.h) is refused
// before anything is made, with the option and the reason: a kernel without
// UNPRIVILEGED_DEV, zero copy, recovery, and timeouts that would let the
// kernel SIGKILL the daemon (a request 30 s old).
#include <doctest/doctest.h>

#include <string>

#include "common/error.h"
#include "daemon/unprivileged.h"
#include "proto/ublk_uapi.h"

using namespace unbd;
using namespace std::chrono_literals;
namespace P = proto::ublk;

namespace {

constexpr uint64_t kFeatures = P::UBLK_F_UNPRIVILEGED_DEV | P::UBLK_F_CMD_IOCTL_ENCODE;

daemon::AttachOptions defaults() {
    daemon::AttachOptions o;
    o.io_timeout = daemon::kUnprivilegedIoTimeout;
    o.reconnect_timeout = daemon::kUnprivilegedReconnectTimeout;
    return o;
}

// The refusal for `o`, "" when accepted; usage errors are marked as such.
std::string refusal(const daemon::AttachOptions& o, uint64_t features = kFeatures, bool usage = true) {
    try {
        const ublk::ZeroCopyRequest zero_copy = daemon::check_unprivileged(o, features);
        CHECK(zero_copy == ublk::ZeroCopyRequest::Off);
    } catch (const Error& e) {
        CHECK((e.kind() == Failure::Usage) == usage);
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("unprivileged: the defaults are accepted, in copy mode, within the kernel's 30 s") {
    CHECK(refusal(defaults()) == "");
    CHECK(daemon::kUnprivilegedIoTimeout + daemon::kUnprivilegedReconnectTimeout <= daemon::kUnprivilegedRequestBudget);
    CHECK(daemon::kUnprivilegedRequestBudget < 30s);
    auto o = defaults();
    o.zero_copy = ublk::ZeroCopyRequest::Auto;  // auto quietly becomes copy mode
    CHECK(refusal(o) == "");
}

TEST_CASE("unprivileged: a kernel without UNPRIVILEGED_DEV says to run as root") {
    CHECK(refusal(defaults(), P::UBLK_F_CMD_IOCTL_ENCODE, false).find("run unbd attach as root") != std::string::npos);
}

TEST_CASE("unprivileged: zero copy, recovery and daemon-loss options are refused with the reason") {
    auto o = defaults();
    o.zero_copy = ublk::ZeroCopyRequest::On;
    CHECK(refusal(o).find("the kernel refuses zero copy") != std::string::npos);
    o = defaults();
    o.payload_ops = nbd::PayloadOps::ReadWriteFixed;
    CHECK(refusal(o).find("needs zero copy") != std::string::npos);
    o = defaults();
    o.on_daemon_loss = daemon::DaemonLoss::Fail;
    CHECK(refusal(o).find("root's devices only") != std::string::npos);
    o = defaults();
    o.recover = true;
    CHECK(refusal(o, kFeatures, false).find("only root recovers") != std::string::npos);
}

TEST_CASE("unprivileged: timeouts that let a request reach the kernel's 30 s are refused") {
    auto o = defaults();
    o.reconnect_timeout = 20s;  // 10 + 20 > 27
    CHECK(refusal(o).find("--io-timeout 10 s with --reconnect-timeout 20 s") != std::string::npos);
    o.reconnect_timeout.reset();  // infinite
    CHECK(refusal(o).find("--reconnect-timeout inf") != std::string::npos);
    o = defaults();
    o.io_timeout = 0ms;  // never: a dead server would hold requests forever
    CHECK(refusal(o).find("--io-timeout 0 (never)") != std::string::npos);
    o = defaults();
    o.io_timeout = 12'500ms;
    o.reconnect_timeout = 14'500ms;  // exactly the budget
    CHECK(refusal(o) == "");
}
