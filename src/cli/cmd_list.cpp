// `unbd list [--json]`: every unbd device (one per state file), with the
// kernel's view of it (live / quiesced / dead, from GET_DEV_INFO) and its
// daemon's (daemon/liveness.h): "daemon" is running / gone / unreachable,
// and "pid" is the daemon's pid as this namespace sees it (0: not running,
// or not visible from here), not the one in the state file.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "daemon/liveness.h"
#include "daemon/state_file.h"
#include "ublk/control_device.h"

namespace unbd::cli {
namespace {

std::string kernel_state(ublk::ControlDevice* control, uint32_t id) {
    if (control == nullptr) return "unknown";
    try {
        return ublk::state_name(control->get_info(id).state);
    } catch (const Error& e) {
        return e.error_number() == ENODEV ? "gone" : "unknown";
    }
}

}  // namespace

void add_list_command(CLI::App& app) {
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("list", "List attached devices");
    cmd->add_flag("--json", *json, "print a JSON array");
    cmd->callback([json] {
        std::vector<std::string> unreadable;
        const auto states = daemon::all_states(&unreadable);
        for (const auto& why : unreadable) std::fprintf(stderr, "unbd: warning: skipped %s\n", why.c_str());
        std::unique_ptr<ublk::ControlDevice> control;
        if (!states.empty()) {
            try {
                control = std::make_unique<ublk::ControlDevice>();
            } catch (const Error&) {
                // No ublk or no rights: still list what the state files say.
            }
        }
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : states) {
            nlohmann::json j = s.to_json();
            j["state"] = kernel_state(control.get(), s.id);
            const daemon::DaemonStatus d = daemon::daemon_status(s);
            j["daemon_running"] = d.reach == daemon::Reach::Running;
            j["daemon"] = d.reach == daemon::Reach::Running ? "running" : d.reach == daemon::Reach::Gone ? "gone" : "unreachable";
            j["pid"] = d.reach == daemon::Reach::Running ? d.pid : 0;
            // A device whose daemon is gone shows that, whatever the kernel still says.
            if (d.reach == daemon::Reach::Gone && j["state"] == "live") j["state"] = "no-daemon";
            out.push_back(j);
        }
        if (*json) {
            std::cout << out.dump(2) << std::endl;
            return;
        }
        std::printf("%-4s %-13s %-9s %-12s %6s %5s %-30s %7s  %s\n", "ID", "DEV", "STATE", "CONNECTION", "QUEUES",
                    "DEPTH", "ZERO-COPY", "PID", "URI");
        for (const auto& j : out) {
            std::printf("%-4u %-13s %-9s %-12s %6u %5u %-30s %7d  %s\n", j["id"].get<unsigned>(),
                        j["dev"].get<std::string>().c_str(), j["state"].get<std::string>().c_str(),
                        j["connection"].get<std::string>().c_str(), j["queues"].get<unsigned>(),
                        j["depth"].get<unsigned>(), j["zero_copy"].get<std::string>().c_str(), j["pid"].get<int>(),
                        j["uri"].get<std::string>().c_str());
            if (j["tls"].is_string()) std::printf("     tls: %s\n", j["tls"].get<std::string>().c_str());
            if (j["owner_uid"].get<uint32_t>() != 0)
                std::printf("     owner: uid %u (an unprivileged device)\n", j["owner_uid"].get<uint32_t>());
            const std::string failure = j["last_failure"].get<std::string>();
            if (j["reconnects"].get<uint64_t>() > 0 || !failure.empty())
                std::printf("     reconnects: %llu; last failure: %s\n",
                            static_cast<unsigned long long>(j["reconnects"].get<uint64_t>()),
                            failure.empty() ? "-" : failure.c_str());
        }
    });
}

}  // namespace unbd::cli
