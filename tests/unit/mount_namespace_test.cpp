// Which mounts the daemon lets go of in its private mount namespace
// (daemon/mount_namespace.h): mountinfo lines in, mount points out.
#include <doctest/doctest.h>

#include "daemon/mount_namespace.h"

using unbd::daemon::mounts_of_devices;

namespace {
// Shaped like /proc/self/mountinfo in the test VM, with two ublk disks
// (259:0 and its partition 259:1) and one other device (8:1).
constexpr const char* kMountinfo =
    "22 1 0:20 / / rw,relatime - 9p host rw\n"
    "30 22 8:1 / /boot rw,relatime shared:5 - ext4 /dev/sda1 rw\n"
    "41 22 259:0 / /tmp/unbd-test.x/mnt rw,relatime - ext4 /dev/ublkb0 rw\n"
    "42 41 259:1 / /tmp/unbd-test.x/mnt/with\\040space rw,relatime - ext4 /dev/ublkb0p1 rw\n"
    "43 22 259:0 /sub /srv/bind rw,relatime - ext4 /dev/ublkb0 rw\n";
}  // namespace

TEST_CASE("mount namespace: the mounts of ublk disks, innermost first, names unescaped") {
    const auto points = mounts_of_devices(kMountinfo, {"259:0", "259:1"});
    REQUIRE(points.size() == 3);
    CHECK(points[0] == "/srv/bind");
    CHECK(points[1] == "/tmp/unbd-test.x/mnt/with space");
    CHECK(points[2] == "/tmp/unbd-test.x/mnt");
}

TEST_CASE("mount namespace: no ublk disk, or one that is not mounted, lets go of nothing") {
    CHECK(mounts_of_devices(kMountinfo, {}).empty());
    CHECK(mounts_of_devices(kMountinfo, {"259:7"}).empty());
    CHECK(mounts_of_devices("", {"259:0"}).empty());
    CHECK(mounts_of_devices("garbage\n41 22\n", {"259:0"}).empty());
}
