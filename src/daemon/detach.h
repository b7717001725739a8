// Detaching a device, gracefully through its daemon when it runs (asked on
// its control socket, or with SIGTERM for a daemon of an unbd before
// control sockets: it drains, disconnects, stops and deletes the device),
// or directly through the control device when the daemon is gone -- at
// once, whatever pid its state file names (daemon/liveness.h). A daemon
// that runs but cannot be reached is refused with the reason, not waited for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace unbd::daemon {

// "/dev/ublkb3", "ublkb3" or "3" -> 3. Throws Error otherwise.
uint32_t parse_device_ref(const std::string& text);

// Returns once /dev/ublkbN, /dev/ublkcN, the state file and the control
// socket are gone (bounded). Throws Error when it cannot get there.
void detach_device(uint32_t id);

// For `attach` (e.g. in a fresh container after its predecessor was
// killed): forgets the state file and socket of every device whose daemon
// is gone and whose ublk device no longer exists; returns one line per
// device whose daemon is gone but whose device waits (to recover or detach:
// it may hold queued I/O, so it is never deleted here).
std::vector<std::string> sweep_stale_devices();

}  // namespace unbd::daemon
