// Hex text to bytes, for key material (psktool's keys, OpenSSL's key log).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace unbd {

// The bytes `hex` spells (either case), or nothing for an odd length or a
// character that is not a hex digit.
inline std::optional<std::vector<unsigned char>> decode_hex(std::string_view hex) {
    auto digit = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (hex.size() % 2 != 0) return std::nullopt;
    std::vector<unsigned char> out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<unsigned char>(hi << 4 | lo));
    }
    return out;
}

}  // namespace unbd
