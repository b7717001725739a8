// `unbd udev-env ublkbN` (hidden): the properties udev's rule imports for
// a ublk block device (daemon/udev_names.h). Prints nothing, successfully,
// for a device with no readable state file (not unbd's, or being torn
// down): udev must never see a failure it would log on every event.
#include <cstdio>

#include "cli/commands.h"
#include "daemon/detach.h"
#include "daemon/state_file.h"
#include "daemon/udev_names.h"

namespace unbd::cli {

void add_udev_env_command(CLI::App& app) {
    auto kernel_name = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("udev-env", "print a device's udev properties (run by udev/60-unbd.rules)");
    cmd->group("");  // hidden from --help: not a command for people
    cmd->add_option("device", *kernel_name, "ublkbN, /dev/ublkbN or N")->required();
    cmd->callback([kernel_name] {
        const uint32_t id = daemon::parse_device_ref(*kernel_name);
        if (const auto state = daemon::read_state(id)) std::fputs(daemon::udev_properties(*state).c_str(), stdout);
    });
}

}  // namespace unbd::cli
