// The resize decision: grow, refuse a shrink unless asked, round to blocks.
#include <doctest/doctest.h>

#include "daemon/resize.h"

using unbd::daemon::decide_resize;
using Action = unbd::daemon::ResizeDecision::Action;

TEST_CASE("resize: a grown export grows the device, rounded down to the block size") {
    auto d = decide_resize(64 << 20, (128 << 20) + 100, 4096, false);
    CHECK(d.action == Action::Grow);
    CHECK(d.new_bytes == 128u << 20);
    CHECK(d.message == "grew from 67108864 bytes to 134217728 bytes");
}

TEST_CASE("resize: the same size (after rounding) changes nothing") {
    CHECK(decide_resize(64 << 20, 64 << 20, 512, false).action == Action::Keep);
    CHECK(decide_resize(64 << 20, (64 << 20) + 511, 512, false).action == Action::Keep);
}

TEST_CASE("resize: a shrunk export is refused unless --allow-shrink") {
    auto d = decide_resize(64 << 20, 32 << 20, 512, false);
    CHECK(d.action == Action::Refuse);
    CHECK(d.message.find("refusing, data beyond the new end would vanish") != std::string::npos);
    d = decide_resize(64 << 20, 32 << 20, 512, true);
    CHECK(d.action == Action::Shrink);
    CHECK(d.new_bytes == 32u << 20);
    CHECK(decide_resize(64 << 20, 100, 512, true).action == Action::Refuse);  // below one block
}
