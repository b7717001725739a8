// `unbd attach URI [-n ID] [-q N] [-d N] [--read-only] [--zero-copy MODE]
//                  [--io-timeout S] [--reconnect-timeout S|inf]
//                  [--durability MODE] [--durability-log-size N]
//                  [--metrics ADDR:PORT] [--foreground] [--json]`
//
// Connects in this process first, so connect and handshake errors come
// back synchronously. Then, unless --foreground, forks: the child becomes
// the device daemon and reports through a pipe -- one JSON line, {"ok":
// true, "state": {...}} once the device is live or {"ok": false, "error":
// "..."} -- and the parent prints /dev/ublkbN (or the JSON) and exits.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/tls_options.h"
#include "common/error.h"
#include "common/fd.h"
#include "daemon/attach_plan.h"
#include "daemon/detach.h"
#include "daemon/device_daemon.h"
#include "daemon/mount_namespace.h"
#include "daemon/unprivileged.h"
#include "daemon/liveness.h"
#include "nbd/uri.h"
#include "ublk/control_device.h"
#include "daemon/state_file.h"

namespace unbd::cli {
namespace {

struct AttachArgs {
    daemon::AttachOptions options;
    std::string zero_copy = "auto";
    std::string payload_ops;
    std::string io_timeout = "30";
    std::string reconnect_timeout = "300";
    std::string durability;
    std::string log_size = "64M";
    std::string on_daemon_loss = "hold";
    std::string resize_check = "0";
    std::string metrics;
    bool foreground = false;
    bool json = false;
    TlsArgs tls;
};

// Seconds as given on the command line: a non-negative number, or "inf"
// where `allow_inf`. nullopt means infinite.
std::optional<std::chrono::milliseconds> parse_seconds(const std::string& text, const char* option, bool allow_inf) {
    if (allow_inf && (text == "inf" || text == "infinity")) return std::nullopt;
    std::size_t used = 0;
    double v = -1;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
    }
    if (used != text.size() || !(v >= 0) || v > 1e7)
        throw usage_error(std::string(option) + " wants a number of seconds" + (allow_inf ? " or 'inf'" : "") + ", not '" +
                    text + "'");
    return std::chrono::milliseconds(static_cast<long long>(v * 1000));
}

// --metrics: an address to bind, port 0 excluded (Prometheus must know it).
daemon::ListenAddress parse_metrics_address(const std::string& text) {
    daemon::ListenAddress a = daemon::parse_listen_address(text);
    if (a.port == 0) throw usage_error("--metrics '" + text + "': the port must be from 1 to 65535");
    return a;
}

// Bytes with an optional K/M/G suffix (powers of 1024).
uint64_t parse_size(const std::string& text, const char* option) {
    std::size_t used = 0;
    unsigned long long v = 0;
    try {
        v = std::stoull(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string suffix = text.substr(used);
    const int shift = suffix.empty() ? 0 : suffix == "K" || suffix == "k" ? 10 : suffix == "M" ? 20 : suffix == "G" ? 30 : -1;
    if (used == 0 || shift < 0 || v > (1ull << 40) >> shift)
        throw usage_error(std::string(option) + " wants a size like 64M, not '" + text + "'");
    return v << shift;
}

void print_live(const daemon::DeviceState& state, bool json) {
    if (json) {
        std::cout << state.to_json().dump() << std::endl;
    } else {
        std::cout << state.dev << std::endl;
    }
}

void write_all(int fd, const std::string& text) {
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

// The child's report, or an error when it died without one. Bounded: the
// daemon's own steps (ADD_DEV ... START_DEV) are bounded well below this.
nlohmann::json read_report(int fd) {
    std::string text;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (text.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw Error("the device daemon did not report within 180 s");
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error("the device daemon exited during setup (see " + daemon::state_dir() + "/*.log)");
        text.append(buf, static_cast<std::size_t>(n));
    }
    return nlohmann::json::parse(text.substr(0, text.find('\n')));
}

std::string daemon_log_path(uint32_t id) { return daemon::state_dir() + "/" + std::to_string(id) + ".log"; }

// In the child: detach from the terminal; logs go to a file (returned).
std::string become_daemon() {
    ::setsid();
    if (::chdir("/") != 0) { /* keep going: nothing depends on the cwd */ }
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::close(null);
    }
    const std::string log = daemon::state_dir() + "/daemon-" + std::to_string(::getpid()) + ".log";
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    return log;
}

// TLS tunnels run a thread each (nbd/tls/tls_tunnel.h); threads survive neither
// fork() nor, cleanly, a change of mount namespace: pause them around both.
void pause_tls(daemon::AttachPlan& plan) {
    for (auto& c : plan.connections)
        if (c.tls) c.tls->pause();
}
void resume_tls(daemon::AttachPlan& plan) {
    for (auto& c : plan.connections)
        if (c.tls) c.tls->resume();
}

void run_foreground(daemon::AttachPlan plan, bool json) {
    pause_tls(plan);
    daemon::isolate_mount_namespace();
    resume_tls(plan);
    daemon::DeviceDaemon d(std::move(plan));
    print_live(d.start(), json);
    if (!d.run_until_stopped()) throw Error("the device stopped because its queues failed");
}

void run_background(daemon::AttachPlan plan, bool json) {
    daemon::ensure_state_dir();  // its log goes there: fail here, in one line, not in the child
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(errno_text("pipe", errno), errno);
    Fd read_end(fds[0]), write_end(fds[1]);
    std::cout.flush();
    std::fflush(stderr);
    pause_tls(plan);  // the parent's paused copies only close their fds
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(errno_text("fork", errno), errno);
    if (pid > 0) {
        write_end.reset();
        plan.connections.clear();  // the child owns the sockets now
        const nlohmann::json report = read_report(read_end.get());
        if (!report.value("ok", false)) throw Error(report.value("error", std::string("attach failed")));
        print_live(daemon::DeviceState::from_json(report.at("state")), json);
        return;
    }
    // Child: the daemon. It returns through main() like any command.
    read_end.reset();
    std::string log = become_daemon();
    daemon::isolate_mount_namespace();
    resume_tls(plan);
    std::optional<daemon::DeviceDaemon> d;
    try {
        d.emplace(std::move(plan));
        const daemon::DeviceState state = d->start();
        ::rename(log.c_str(), daemon_log_path(state.id).c_str());
        log = daemon_log_path(state.id);
        write_all(write_end.get(), nlohmann::json{{"ok", true}, {"state", state.to_json()}}.dump() + "\n");
    } catch (const std::exception& e) {
        d.reset();  // delete the half-made device before the parent hears back
        write_all(write_end.get(), nlohmann::json{{"ok", false}, {"error", e.what()}}.dump() + "\n");
        throw;
    }
    write_end.reset();
    if (!d->run_until_stopped()) throw Error("the device stopped because its queues failed");
    ::unlink(log.c_str());  // a clean detach leaves nothing behind; failures keep their log
}

// `attach -n ID URI` where device ID is waiting for a new daemon (its old
// one died) and was attached from the same URI: recover it instead, so a
// restart policy brings the disk back by running the same command again.
bool recoverable_with_same_uri(const daemon::AttachOptions& options) {
    if (!options.dev_id) return false;
    const auto state = daemon::read_state(*options.dev_id);
    if (!state || daemon::daemon_status(*state).reach != daemon::Reach::Gone) return false;
    if (state->uri != nbd::parse_uri(options.uri_text).to_string()) return false;
    try {
        ublk::ControlDevice control;
        const auto kstate = static_cast<proto::ublk::DevState>(control.get_info(*options.dev_id).state);
        return kstate == proto::ublk::DevState::Quiesced || kstate == proto::ublk::DevState::FailIo ||
               kstate == proto::ublk::DevState::Live;  // LIVE: still being released; recovery waits
    } catch (const Error&) {
        return false;
    }
}

}  // namespace

void launch_daemon(daemon::AttachPlan plan, bool foreground, bool json) {
    for (const auto& w : plan.warnings) std::fprintf(stderr, "unbd: warning: %s\n", w.c_str());
    if (!log_level_given) spdlog::set_level(spdlog::level::info);
    if (foreground)
        run_foreground(std::move(plan), json);
    else
        run_background(std::move(plan), json);
}

void add_attach_command(CLI::App& app) {
    auto args = std::make_shared<AttachArgs>();
    auto* cmd = app.add_subcommand("attach", "Attach an NBD export as /dev/ublkbN");
    cmd->add_option("uri", args->options.uri_text,
                    "nbd[s]://host[:port]/export or nbd[s]+unix:///export?socket=PATH")
        ->required();
    cmd->add_option("-n,--id", args->options.dev_id, "ublk device number (default: the first free one)");
    cmd->add_option("--name", args->options.name,
                    "a stable name: udev links /dev/unbd/NAME to the device (udev/60-unbd.rules)");
    cmd->add_option("-q,--queues", args->options.queues,
                    "queues = connections (default: min(CPUs,4), 1 without multi-conn)");
    cmd->add_option("-d,--depth", args->options.depth, "queue depth (default 128)");
    cmd->add_flag("--read-only", args->options.read_only, "make the device read-only");
    cmd->add_option("--zero-copy", args->zero_copy, "auto, on or off (default auto; off with TLS)")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    cmd->add_option("--payload-ops", args->payload_ops,
                    "socket payload op: send_recv_fixed (default on 7.2+), read_write_fixed (default before), send_zc_fixed, user_copy (with --zero-copy=off)")
        ->group("Advanced");
    cmd->add_option("--io-timeout", args->io_timeout,
                    "seconds without a reply before a connection is declared dead and replaced (default 30; 0 = never)");
    cmd->add_option("--reconnect-timeout", args->reconnect_timeout,
                    "seconds I/O is held while reconnecting before it fails with EIO; reconnecting goes on "
                    "(default 300; 0 = fail at once; inf = hold forever)");
    cmd->add_option("--durability", args->durability,
                    "replay (default with a server write cache): keep acknowledged unflushed writes and replay them "
                    "after a reconnect; fail-flush: fail the next FLUSH instead; trust-server: neither (unsafe with "
                    "a volatile server cache)")
        ->check(CLI::IsMember({"replay", "fail-flush", "trust-server"}));
    cmd->add_option("--durability-log-size", args->log_size,
                    "memory for unflushed writes, per device (default 64M); when full, unbd flushes and writes wait");
    cmd->add_option("--on-daemon-loss", args->on_daemon_loss,
                    "when the daemon dies: hold I/O until `unbd recover` (default), or fail it at once (6.13+)")
        ->check(CLI::IsMember({"hold", "fail"}));
    cmd->add_option("--resize-check", args->resize_check,
                    "every SECS, ask the server for the export's size and grow the device when it grew (6.16+; "
                    "default 0 = off; see unbd resize)");
    cmd->add_option("--metrics", args->metrics,
                    "serve Prometheus metrics on ADDR:PORT (127.0.0.1:9100, [::1]:9100, :9100 for every "
                    "address): /metrics, /healthz, /readyz (default: off)");
    cmd->add_flag("--unprivileged", args->options.unprivileged,
                  "make a device its (non-root) user owns; automatic when not root (README: Unprivileged devices)");
    cmd->add_flag("--foreground", args->foreground, "stay in the foreground (systemd, containers)");
    cmd->add_flag("--json", args->json, "print the device as a JSON object");
    add_tls_options(cmd, args->tls);
    cmd->callback([args, cmd] {
        // An unprivileged device's daemon is killed when a request waits 30 s
        // (daemon/unprivileged.h): shorter defaults, so I/O fails first.
        if (daemon::making_unprivileged_devices()) {
            using std::chrono::seconds, std::chrono::duration_cast;
            if (cmd->count("--io-timeout") == 0)
                args->io_timeout = std::to_string(duration_cast<seconds>(daemon::kUnprivilegedIoTimeout).count());
            if (cmd->count("--reconnect-timeout") == 0)
                args->reconnect_timeout =
                    std::to_string(duration_cast<seconds>(daemon::kUnprivilegedReconnectTimeout).count());
        }
        // The TLS options become part of the URI (kept in the state file).
        args->options.uri_text = apply_tls_options(nbd::parse_uri(args->options.uri_text), args->tls).to_string();
        args->options.zero_copy = ublk::parse_zero_copy(args->zero_copy);
        if (!args->payload_ops.empty()) args->options.payload_ops = ublk::parse_payload_ops(args->payload_ops);
        args->options.io_timeout = parse_seconds(args->io_timeout, "--io-timeout", false).value();
        args->options.reconnect_timeout = parse_seconds(args->reconnect_timeout, "--reconnect-timeout", true);
        if (!args->durability.empty()) args->options.durability = nbd::parse_durability(args->durability);
        args->options.durability_log_bytes = parse_size(args->log_size, "--durability-log-size");
        args->options.resize_check = parse_seconds(args->resize_check, "--resize-check", false).value();
        if (!args->metrics.empty()) args->options.metrics = parse_metrics_address(args->metrics);
        args->options.on_daemon_loss = args->on_daemon_loss == "fail" ? daemon::DaemonLoss::Fail : daemon::DaemonLoss::Hold;
        // What a killed predecessor (another container, say) left behind.
        for (const auto& line : daemon::sweep_stale_devices())
            std::fprintf(stderr, "unbd: warning: %s\n", line.c_str());
        if (recoverable_with_same_uri(args->options)) {
            std::fprintf(stderr, "unbd: device %u is waiting for a daemon: recovering it\n", *args->options.dev_id);
            return launch_daemon(plan_recovery(*args->options.dev_id), args->foreground, args->json);
        }
        // A port in use fails here, in one line, before any connection or
        // device (the daemon binds again, still before making the device).
        if (args->options.metrics) daemon::check_can_listen(*args->options.metrics);
        launch_daemon(daemon::plan_attach(args->options), args->foreground, args->json);
    });
}

}  // namespace unbd::cli
