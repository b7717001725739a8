// Cookies on the wire: which tag, which piece of its request, and which
// use of the tag (generation), so a stale or duplicated reply is caught
// instead of being applied to whatever the tag carries now.
//
//   bits  0..15  tag
//   bits 16..31  part (a request split above the server's maximum payload,
//                or the FLUSH that emulates FUA, has several NBD commands)
//   bits 32..63  generation of the tag (bumped on every submit)
#pragma once

#include <cstdint>

namespace unbd::nbd {

struct Cookie {
    uint16_t tag = 0;
    uint16_t part = 0;
    uint32_t generation = 0;

    constexpr uint64_t encode() const {
        return uint64_t{tag} | (uint64_t{part} << 16) | (uint64_t{generation} << 32);
    }
    static constexpr Cookie decode(uint64_t raw) {
        return Cookie{static_cast<uint16_t>(raw), static_cast<uint16_t>(raw >> 16), static_cast<uint32_t>(raw >> 32)};
    }
};

static_assert(Cookie::decode(Cookie{513, 2, 0xdeadbeef}.encode()).generation == 0xdeadbeef);
static_assert(Cookie::decode(Cookie{513, 2, 0xdeadbeef}.encode()).part == 2);

}  // namespace unbd::nbd
