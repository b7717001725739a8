// unbd: attach NBD exports as local block devices through ublk and io_uring.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <signal.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

namespace {

constexpr const char* kExitStatuses =
    "Exit status: 0 done; 1 failed (server, network, kernel, rights: the message says what to do); "
    "2 wrong command line (unknown option, bad value or URI: nothing was tried); "
    "3 no such device (not there any more, or not made by unbd).";

// A parse error as one line, naming the subcommand's --help.
int usage(const CLI::App& app, const CLI::ParseError& e) {
    std::string help = "unbd --help";
    for (const CLI::App* sub : app.get_subcommands()) help = "unbd " + sub->get_name() + " --help";
    std::string what = e.what();
    // CLI11 checks for the missing subcommand before it complains about
    // what it did not understand: name that instead ("unbd frobnicate").
    if (app.get_subcommands().empty() && !app.remaining().empty())
        what = "unknown command or option '" + app.remaining().front() + "'";
    std::fprintf(stderr, "unbd: %s (see %s)\n", what.c_str(), help.c_str());
    return static_cast<int>(unbd::Failure::Usage);
}

}  // namespace

int main(int argc, char** argv) {
    // A peer that went away must fail a send with EPIPE, which becomes a
    // message, not kill the process with SIGPIPE (exit 141, no word). Sends
    // also pass MSG_NOSIGNAL where they can; io_uring's WRITE_FIXED cannot.
    ::signal(SIGPIPE, SIG_IGN);
    // Logs go to stderr: stdout carries results (/dev/ublkbN, --json).
    spdlog::set_default_logger(spdlog::stderr_color_mt("unbd"));
    CLI::App app{"unbd: NBD exports as local block devices (ublk + io_uring)", "unbd"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "unbd 0.1.0");
    app.footer(kExitStatuses);
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
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) sub->footer(kExitStatuses);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        return usage(app, e);
    } catch (const unbd::Error& e) {
        std::fprintf(stderr, "unbd: %s\n", e.what());
        return static_cast<int>(e.kind());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unbd: unexpected error: %s\n", e.what());
        return 1;
    }
    return 0;
}
