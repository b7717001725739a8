// Each `unbd` subcommand lives in its own cmd_*.cpp and registers itself on
// the app here. A command's callback throws unbd::Error on failure; main()
// turns that into one line on stderr and a non-zero exit status.
#pragma once

#include <CLI/CLI.hpp>

namespace unbd::cli {

void add_info_command(CLI::App& app);
void add_attach_command(CLI::App& app);
void add_detach_command(CLI::App& app);
void add_list_command(CLI::App& app);

}  // namespace unbd::cli
