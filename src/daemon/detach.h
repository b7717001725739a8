// Detaching a device, gracefully through its daemon when it is alive
// (SIGTERM: it drains, disconnects, stops and deletes the device), or
// directly through the control device when the daemon is gone.
#pragma once

#include <cstdint>
#include <string>

namespace unbd::daemon {

// "/dev/ublkb3", "ublkb3" or "3" -> 3. Throws Error otherwise.
uint32_t parse_device_ref(const std::string& text);

// Returns once /dev/ublkbN, /dev/ublkcN and the state file are gone
// (bounded). Throws Error when it cannot get there.
void detach_device(uint32_t id);

// True when pid is a running process (not a zombie).
bool process_alive(int pid);

}  // namespace unbd::daemon
