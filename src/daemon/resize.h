// Resizing a device to its export. NBD has no server-to-client size
// notification, so the daemon learns a new size by negotiating again on a
// side connection (`unbd resize`, SIGUSR2; `--resize-check SECS`; and after
// a reconnect whose handshake saw another size), then UPDATE_SIZE (6.16+,
// in 512-byte sectors; the kernel emits a change uevent).
//
// A grown export grows the device. A shrunk one is refused unless asked
// (--allow-shrink): data beyond the new end would vanish under a
// filesystem. The decision is pure, for unit tests.
#pragma once

#include <cstdint>
#include <string>

namespace unbd::daemon {

struct ResizeDecision {
    enum class Action { Keep, Grow, Shrink, Refuse } action = Action::Keep;
    uint64_t new_bytes = 0;  // Grow/Shrink: the device's new size
    std::string message;     // one line for the user and the log
};

ResizeDecision decide_resize(uint64_t device_bytes, uint64_t export_bytes, uint32_t logical_block,
                             bool allow_shrink);

}  // namespace unbd::daemon
