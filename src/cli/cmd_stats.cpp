// `unbd stats DEV|ID [--json]`: the device's counters, asked of its daemon
// on the control socket (daemon/control_socket.h): requests and bytes by
// kind, errors, requests in flight, summed over the queues (--json has each
// queue too), and the connection's health and reconnects.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "daemon/control_protocol.h"
#include "daemon/detach.h"
#include "daemon/liveness.h"
#include "daemon/state_file.h"

namespace unbd::cli {
namespace {

void print_human(const daemon::DeviceStats& s, int pid) {
    const ublk::IoStats& t = s.total;
    const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf("%s (device %u, daemon pid %d): %s, %zu queue%s\n", s.dev.c_str(), s.id, pid, s.connection.c_str(),
                s.queues.size(), s.queues.size() == 1 ? "" : "s");
    std::printf("  reads      %llu (%llu bytes)\n", u(t.reads), u(t.read_bytes));
    std::printf("  writes     %llu (%llu bytes)\n", u(t.writes), u(t.written_bytes));
    std::printf("  flushes    %llu\n", u(t.flushes));
    std::printf("  discards   %llu\n", u(t.discards));
    std::printf("  errors     %llu\n", u(t.errors));
    std::printf("  in flight  %llu\n", u(t.in_flight));
    std::printf("  waits      %llu (%llu held their wake-up to gather replies)\n", u(t.waits), u(t.held_waits));
    std::printf("  reconnects %llu%s%s\n", u(s.reconnects), s.last_failure.empty() ? "" : "; last failure: ",
                s.last_failure.c_str());
}

}  // namespace

void add_stats_command(CLI::App& app) {
    struct Args {
        std::string device;
        bool json = false;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("stats", "Show a device's I/O counters, asked of its daemon");
    cmd->add_option("device", args->device, "/dev/ublkbN or N")->required();
    cmd->add_flag("--json", args->json, "print a JSON object");
    cmd->callback([args] {
        const uint32_t id = daemon::parse_device_ref(args->device);
        const daemon::DeviceState state = daemon::load_state(id);
        daemon::DaemonStatus d = daemon::running_daemon(state, "show its counters");
        if (d.legacy)
            throw Error("the daemon of device " + std::to_string(id) + " (pid " + std::to_string(d.pid) +
                            ") is from an unbd without stats: unbd restart it first",
                        EOPNOTSUPP);
        const nlohmann::json reply = daemon::ask(d.contact, daemon::ControlRequest{daemon::ControlCommand::Stats});
        const daemon::DeviceStats stats = daemon::stats_from_json(reply.value("stats", nlohmann::json()));
        if (args->json) {
            nlohmann::json out = daemon::to_json(stats);
            out["pid"] = d.pid;
            std::cout << out.dump(2) << std::endl;
            return;
        }
        print_human(stats, d.pid);
    });
}

}  // namespace unbd::cli
