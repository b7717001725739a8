// `unbd detach DEV|ID` and `unbd detach --all`: graceful through the
// daemon; still works when the daemon died (see daemon/detach.h).
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "daemon/detach.h"
#include "daemon/state_file.h"

namespace unbd::cli {
namespace {

struct DetachArgs {
    std::string device;
    bool all = false;
};

}  // namespace

void add_detach_command(CLI::App& app) {
    auto args = std::make_shared<DetachArgs>();
    auto* cmd = app.add_subcommand("detach", "Detach a device: drain, disconnect, delete");
    auto* dev = cmd->add_option("device", args->device, "/dev/ublkbN or N");
    auto* all = cmd->add_flag("--all", args->all, "detach every unbd device");
    dev->excludes(all);
    cmd->callback([args] {
        if (!args->all) {
            if (args->device.empty()) throw usage_error("detach: give a device (/dev/ublkbN or N) or --all");
            daemon::detach_device(daemon::parse_device_ref(args->device));
            return;
        }
        std::string errors;
        for (const uint32_t id : daemon::state_ids()) {  // unreadable state files too: each says why
            try {
                daemon::detach_device(id);
            } catch (const Error& e) {
                errors += (errors.empty() ? "" : "; ") + std::string(e.what());
            }
        }
        if (!errors.empty()) throw Error(errors);
    });
}

}  // namespace unbd::cli
