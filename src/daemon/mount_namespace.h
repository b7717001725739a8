// The daemon's own mount namespace.
//
// Contract: isolate_mount_namespace() gives the calling process a private
// copy of the mount table (unshare(CLONE_NEWNS), everything MS_PRIVATE), so
// mounts of our device made later outside never propagate in: a daemon
// whose exit tears down a mount of its own device deadlocks in cleanup_mnt.
// The copy is taken while the caller may already have ublk disks mounted
// (`attach -n` or `recover` of a mounted disk, `unbd restart`, or another
// unbd device): each such mount is detached (MNT_DETACH) in the copy, or
// the user's `umount` would leave that filesystem alive in the daemon's
// namespace until it exits (fsck would then check a mounted filesystem, and
// the daemon's exit would shut ext4 down under it). Best effort: a failure
// is logged, never fatal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace unbd::daemon {

void isolate_mount_namespace();

// Mount points (mountinfo field 5, unescaped) of the mounts whose device
// (field 3, "major:minor") is one of `devices`, in reverse mount order so
// mounts on top come first. Pure: /proc/self/mountinfo's text in.
std::vector<std::string> mounts_of_devices(std::string_view mountinfo, const std::vector<std::string>& devices);

// "major:minor" of every ublk block device and partition (/sys/block/ublkb*).
std::vector<std::string> ublk_block_devices();

}  // namespace unbd::daemon
