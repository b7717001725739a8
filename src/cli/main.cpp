// unbd: attach NBD exports as local block devices through ublk and io_uring.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
    // Logs go to stderr: stdout carries results (/dev/ublkbN, --json).
    spdlog::set_default_logger(spdlog::stderr_color_mt("unbd"));
    CLI::App app{"unbd: NBD exports as local block devices (ublk + io_uring)", "unbd"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "unbd 0.1.0");
    // Default: warn for commands; device daemons raise it to info, so their
    // log says when a connection was lost, how long I/O was held, what was
    // replayed (see launch_daemon).
    std::string log_level;
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (default: warn; info for daemons)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
    spdlog::set_level(spdlog::level::warn);
    app.parse_complete_callback([&] {
        if (!log_level.empty()) spdlog::set_level(spdlog::level::from_str(log_level));
        unbd::cli::log_level_given = !log_level.empty();
    });

    unbd::cli::add_info_command(app);
    unbd::cli::add_attach_command(app);
    unbd::cli::add_detach_command(app);
    unbd::cli::add_list_command(app);
    unbd::cli::add_recover_command(app);
    unbd::cli::add_restart_command(app);
    unbd::cli::add_resize_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const unbd::Error& e) {
        std::fprintf(stderr, "unbd: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unbd: unexpected error: %s\n", e.what());
        return 1;
    }
    return 0;
}
