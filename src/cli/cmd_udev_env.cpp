// `unbd udev-env ublkbN|ublkcN` (hidden): the properties udev's rule
// imports for a ublk device (daemon/udev_names.h):
//   - for the block device, from its state file: UNBD_ID, UNBD_URI, UNBD_NAME;
//   - for both nodes of an unprivileged unbd device (daemon/unprivileged.h):
//     UNBD_OWNER_UID and UNBD_OWNER_GID, so the rule gives them to the user
//     who made it (the kernel checks its rights on /dev/ublkcN).
// Prints nothing, successfully, for a device that is not unbd's or is being
// torn down: udev must never see a failure it would log on every event.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "daemon/detach.h"
#include "daemon/state_file.h"
#include "daemon/udev_names.h"
#include "ublk/control_device.h"

namespace unbd::cli {
namespace {

std::string owner_properties(uint32_t id) {
    try {
        ublk::ControlDevice control;  // adds /dev/ublkcN to the command where the device needs it
        const ublk::DevInfo info = control.get_info(id);
        if ((info.flags & proto::ublk::UBLK_F_UNPRIVILEGED_DEV) == 0) return "";
        if (info.ublksrv_flags != ublk::kUnbdDeviceMark) return "";  // another ublk server's: its own rules
        return "UNBD_OWNER_UID=" + std::to_string(info.owner_uid) + "\nUNBD_OWNER_GID=" +
               std::to_string(info.owner_gid) + "\n";
    } catch (const Error&) {
        return "";
    }
}

}  // namespace

void add_udev_env_command(CLI::App& app) {
    auto kernel_name = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("udev-env", "print a device's udev properties (run by udev/60-unbd.rules)");
    cmd->group("");  // hidden from --help: not a command for people
    cmd->add_option("device", *kernel_name, "ublkbN, ublkcN, /dev/ublkbN or N")->required();
    cmd->callback([kernel_name] {
        std::string name = *kernel_name;
        const bool char_node = name.rfind("ublkc", 0) == 0;
        if (char_node) name = "ublkb" + name.substr(5);
        const uint32_t id = daemon::parse_device_ref(name);
        std::string properties = owner_properties(id);
        if (!char_node)
            if (const auto state = daemon::read_state(id)) properties += daemon::udev_properties(*state);
        std::fputs(properties.c_str(), stdout);
    });
}

}  // namespace unbd::cli
