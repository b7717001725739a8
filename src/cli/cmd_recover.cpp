// `unbd recover DEV|ID`: a new daemon for a device whose daemon died (the
// kernel keeps it quiesced, UBLK_F_USER_RECOVERY). The URI and options come
// from the state file; the export must still fit the device.
//
// `unbd restart DEV|ID`: live upgrade. The running daemon is asked (on its
// control socket; SIGUSR1 for a daemon of an unbd before control sockets)
// to quiesce the device (QUIESCE_DEV, 6.16+) and exit without deleting it;
// then this binary recovers it. The filesystem on it sees a pause.
#include <signal.h>

#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "common/error.h"
#include "common/wait.h"
#include "daemon/detach.h"
#include "daemon/liveness.h"
#include "daemon/state_file.h"
#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"

namespace unbd::cli {

daemon::AttachPlan plan_recovery(uint32_t id) {
    const daemon::DeviceState state = daemon::load_state(id);
    const daemon::DaemonStatus d = daemon::daemon_status(state);
    if (d.reach == daemon::Reach::Running)
        throw Error("device " + std::to_string(id) + " has a running daemon (pid " + std::to_string(d.pid) +
                        "): nothing to recover (to replace the daemon, use unbd restart)",
                    EBUSY);
    if (d.reach == daemon::Reach::Unreachable)
        throw Error("cannot recover device " + std::to_string(id) + ": " + d.why, EHOSTUNREACH);
    return daemon::plan_attach(daemon::recovery_options(state));
}

namespace {

struct RecoverArgs {
    std::string device;
    bool foreground = false;
    bool json = false;
};

void add_common(CLI::App* cmd, RecoverArgs& args) {
    cmd->add_option("device", args.device, "/dev/ublkbN or N")->required();
    cmd->add_flag("--foreground", args.foreground, "stay in the foreground (systemd, containers)");
    cmd->add_flag("--json", args.json, "print the device as a JSON object");
}

// Asks the daemon to hand the device over and waits until it is gone.
void hand_over(uint32_t id) {
    const daemon::DeviceState state = daemon::load_state(id);
    daemon::DaemonStatus d = daemon::daemon_status(state);
    if (d.reach == daemon::Reach::Gone)
        throw Error("device " + std::to_string(id) + " has no running daemon: use unbd recover", ESRCH);
    if (d.reach == daemon::Reach::Unreachable)
        throw Error("cannot restart device " + std::to_string(id) + ": " + d.why, EHOSTUNREACH);
    {
        ublk::ControlDevice control;
        namespace P = proto::ublk;
        if ((control.features() & P::UBLK_F_QUIESCE) == 0)
            throw Error("this kernel lacks UBLK_F_QUIESCE (Linux 6.16 or newer): a live restart is impossible; "
                        "detach and attach again instead",
                        EOPNOTSUPP);
        if ((control.get_info(id).flags & P::UBLK_F_QUIESCE) == 0)
            throw Error("device " + std::to_string(id) + " was made without UBLK_F_QUIESCE: it cannot be restarted live",
                        EOPNOTSUPP);
    }
    if (d.legacy) {
        if (::kill(d.pid, SIGUSR1) != 0) throw Error(errno_text("cannot signal the daemon", errno), errno);
    } else {
        daemon::ask(d.contact, daemon::ControlRequest{daemon::ControlCommand::Restart});
    }
    if (!wait_for([&] { return daemon::daemon_status(state).reach == daemon::Reach::Gone; }, std::chrono::seconds(60),
                  std::chrono::milliseconds(100)))
        throw Error("the daemon of device " + std::to_string(id) + " did not hand the device over within 60 s");
}

}  // namespace

void add_recover_command(CLI::App& app) {
    auto args = std::make_shared<RecoverArgs>();
    auto* cmd = app.add_subcommand("recover", "Start a new daemon for a device whose daemon died");
    add_common(cmd, *args);
    cmd->callback([args] {
        const uint32_t id = daemon::parse_device_ref(args->device);
        launch_daemon(plan_recovery(id), args->foreground, args->json);
    });
}

void add_restart_command(CLI::App& app) {
    auto args = std::make_shared<RecoverArgs>();
    auto* cmd = app.add_subcommand("restart", "Replace a device's daemon with this binary, keeping the device");
    add_common(cmd, *args);
    cmd->callback([args] {
        const uint32_t id = daemon::parse_device_ref(args->device);
        hand_over(id);
        launch_daemon(plan_recovery(id), args->foreground, args->json);
    });
}

}  // namespace unbd::cli
