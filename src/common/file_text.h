// read_file_text: the whole of a small file -- a state file, a /proc or
// /sys entry -- as a string; nullopt when it cannot be opened or read.
#pragma once

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace unbd {

inline std::optional<std::string> read_file_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return text.str();
}

}  // namespace unbd
