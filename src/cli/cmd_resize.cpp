// `unbd resize DEV|ID [--allow-shrink]`: the daemon renegotiates on a side
// connection and resizes the device to the export (daemon/resize.h). We ask
// on its control socket ({"cmd":"resize"}; SIGUSR2 through sigqueue, value
// 1 = allow shrinking, to a daemon of an unbd before control sockets) and
// wait for the outcome in the state file (its resize sequence moves on).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/wait.h"
#include "daemon/detach.h"
#include "daemon/liveness.h"
#include "daemon/state_file.h"

namespace unbd::cli {

void add_resize_command(CLI::App& app) {
    struct Args {
        std::string device;
        bool allow_shrink = false;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("resize", "Resize a device to its export's current size (Linux 6.16+)");
    cmd->add_option("device", args->device, "/dev/ublkbN or N")->required();
    cmd->add_flag("--allow-shrink", args->allow_shrink,
                  "also shrink the device when the export shrank (data beyond the new end is gone)");
    cmd->callback([args] {
        const uint32_t id = daemon::parse_device_ref(args->device);
        const daemon::DeviceState before = daemon::load_state(id);
        daemon::DaemonStatus d = daemon::running_daemon(before, "resize it");
        if (d.legacy) {
            sigval value{};
            value.sival_int = args->allow_shrink ? 1 : 0;
            if (::sigqueue(d.pid, SIGUSR2, value) != 0) throw Error(errno_text("cannot signal the daemon", errno), errno);
        } else {
            daemon::ask(d.contact, daemon::ControlRequest{daemon::ControlCommand::Resize, args->allow_shrink});
        }
        std::optional<daemon::DeviceState> after;
        const bool answered = wait_for(
            [&] {
                after = daemon::read_state(id);
                return after && after->resize_seq != before.resize_seq;
            },
            std::chrono::seconds(60));
        if (!answered) throw Error("the daemon of device " + std::to_string(id) + " did not answer within 60 s");
        if (!after->resize_ok) throw Error(after->resize_result);
        std::cout << after->dev << ": " << after->resize_result << std::endl;
    });
}

}  // namespace unbd::cli
