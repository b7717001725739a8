#include "daemon/unprivileged.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/file_text.h"
#include "common/wait.h"
#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"

namespace unbd::daemon {

namespace P = proto::ublk;
using std::chrono::milliseconds;

namespace {

std::string seconds_text(milliseconds ms) {
    if (ms.count() == 0) return "0 (never)";
    const long long s10 = ms.count() / 100;  // tenths
    return s10 % 10 == 0 ? std::to_string(s10 / 10) + " s" : std::to_string(s10 / 10) + "." + std::to_string(s10 % 10) + " s";
}

}  // namespace

bool making_unprivileged_devices() { return ::geteuid() != 0; }

ublk::ZeroCopyRequest check_unprivileged(const AttachOptions& options, uint64_t features) {
    if ((features & P::UBLK_F_UNPRIVILEGED_DEV) == 0)
        throw Error("this kernel does not let ordinary users make ublk devices (no UBLK_F_UNPRIVILEGED_DEV): "
                    "run unbd attach as root",
                    EPERM);
    if (options.recover)
        throw Error("only root recovers or restarts devices: an unprivileged device has no user recovery in the "
                    "kernel, so it ends with its daemon",
                    EPERM);
    if (options.zero_copy == ublk::ZeroCopyRequest::On)
        throw usage_error("--zero-copy=on is not possible for an unprivileged device: the kernel refuses zero copy "
                          "to them (EINVAL for AUTO_BUF_REG); use --zero-copy=auto or off");
    if (options.payload_ops && *options.payload_ops != nbd::PayloadOps::UserCopy)
        throw usage_error(std::string("--payload-ops ") + nbd::name(*options.payload_ops) +
                          " needs zero copy, which the kernel refuses to unprivileged devices");
    if (options.on_daemon_loss == DaemonLoss::Fail)
        throw usage_error("--on-daemon-loss applies to root's devices only: an unprivileged device ends with its "
                          "daemon");
    const bool bounded = options.io_timeout.count() > 0 && options.reconnect_timeout.has_value();
    if (!bounded || options.io_timeout + *options.reconnect_timeout > kUnprivilegedRequestBudget) {
        const std::string reconnect =
            options.reconnect_timeout ? seconds_text(*options.reconnect_timeout) : std::string("inf");
        throw usage_error("--io-timeout " + seconds_text(options.io_timeout) + " with --reconnect-timeout " +
                          reconnect + " lets a request wait longer than an unprivileged device may: the kernel "
                          "kills its daemon, and removes the disk, when a request is 30 s old. Keep the two below " +
                          seconds_text(kUnprivilegedRequestBudget) + " together (defaults here: " +
                          seconds_text(kUnprivilegedIoTimeout) + " and " +
                          seconds_text(kUnprivilegedReconnectTimeout) + ")");
    }
    return ublk::ZeroCopyRequest::Off;
}

void wait_for_own_char_node(uint32_t dev_id, std::chrono::seconds patience) {
    const std::string path = ublk::char_device_path(dev_id);
    if (wait_for([&] { return ::access(path.c_str(), R_OK | W_OK) == 0; }, patience)) return;
    struct stat st {};
    const std::string owner = ::stat(path.c_str(), &st) == 0 ? "uid " + std::to_string(st.st_uid) : "nobody";
    throw Error(path + " still belongs to " + owner + " after " + std::to_string(patience.count()) +
                    " s, so this user cannot set the device up: udev must give an unprivileged device's nodes "
                    "to its owner (install unbd's udev/60-unbd.rules and check that udev runs). Root can remove "
                    "the half-made device: unbd detach " + std::to_string(dev_id),
                EACCES);
}

void warn_if_kernel_timeout_short(uint32_t dev_id, const AttachOptions& options) {
    const std::string text =
        read_file_text("/sys/block/ublkb" + std::to_string(dev_id) + "/queue/io_timeout").value_or("0");
    const long long kernel_ms = std::strtoll(text.c_str(), nullptr, 10);
    if (kernel_ms <= 0) return;
    const milliseconds longest = options.io_timeout + options.reconnect_timeout.value_or(milliseconds(0));
    if (longest < milliseconds(kernel_ms)) return;
    spdlog::warn("the kernel kills this daemon when a request of /dev/ublkb{} is {} old (queue/io_timeout), "
                 "but a request may wait {} here (--io-timeout + --reconnect-timeout): a long server outage "
                 "will end the device",
                 dev_id, seconds_text(milliseconds(kernel_ms)), seconds_text(longest));
}

}  // namespace unbd::daemon
