// Each `unbd` subcommand lives in its own cmd_*.cpp and registers itself on
// the app here. A command's callback throws unbd::Error on failure; main()
// turns that into one line on stderr and a non-zero exit status.
#pragma once

#include <CLI/CLI.hpp>

#include "daemon/attach_plan.h"

namespace unbd::cli {

void add_info_command(CLI::App& app);
void add_attach_command(CLI::App& app);
void add_detach_command(CLI::App& app);
void add_list_command(CLI::App& app);
void add_recover_command(CLI::App& app);
void add_restart_command(CLI::App& app);
void add_resize_command(CLI::App& app);
void add_stats_command(CLI::App& app);
void add_udev_env_command(CLI::App& app);  // hidden: udev's rule runs it

// Starts the device daemon for a plan (attach or recover): in the
// foreground, or forked off once the device is live; prints /dev/ublkbN
// (or the JSON state). Shared by attach, recover and restart.
void launch_daemon(daemon::AttachPlan plan, bool foreground, bool json);

// Whether --log-level was given (else daemons log at info).
inline bool log_level_given = false;

// `attach -n ID` of a device whose daemon died, with the same URI, and
// `recover`: plans the recovery from the state file. Throws with the reason.
daemon::AttachPlan plan_recovery(uint32_t id);

}  // namespace unbd::cli
