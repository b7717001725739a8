// Stable names for unbd's devices: /dev/unbd/NAME, made by udev.
//
// `unbd attach --name NAME` records NAME in the state file. udev's rule
// (udev/60-unbd.rules) runs `unbd udev-env ublkbN` on every add and change
// event of a ublkb device; it prints the device's properties from its state
// file (UNBD_ID, UNBD_URI, UNBD_NAME) and the rule links /dev/unbd/NAME when
// there is a name. The kernel's add event comes at START_DEV, before the
// daemon has written the state file, so the daemon asks for a change event
// once it has (announce_to_udev): udev then sees the name. A device that is
// not unbd's, or whose state file is gone, gets no properties.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/state_file.h"

namespace unbd::daemon {

// Throws a usage Error unless NAME fits a path component udev will make:
// 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'.
void check_device_name(const std::string& name);

// Throws Error (EEXIST) when a live device other than `id` (or any, when id
// is unset) already has this name in its state file.
void check_name_free(const std::string& name, const std::optional<uint32_t>& id);

// The KEY=VALUE lines udev's IMPORT{program} reads, for one device. Pure.
std::string udev_properties(const DeviceState& state);

// Writes "change" to /sys/block/ublkbN/uevent; logs (does not throw) when it
// cannot: a missing name link is not worth failing an attach for.
void announce_to_udev(uint32_t id) noexcept;

}  // namespace unbd::daemon
