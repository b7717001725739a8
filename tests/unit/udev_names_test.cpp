// Stable device names (daemon/udev_names.h): which names --name accepts
// (each becomes a path component udev makes, /dev/unbd/NAME), and the
// properties udev's rule imports.
#include <doctest/doctest.h>

#include <string>

#include "common/error.h"
#include "daemon/udev_names.h"

using namespace unbd;

namespace {

bool accepted(const std::string& name) {
    try {
        daemon::check_device_name(name);
        return true;
    } catch (const Error& e) {
        CHECK(e.kind() == Failure::Usage);
        CHECK(std::string(e.what()).find("/dev/unbd/NAME") != std::string::npos);
        return false;
    }
}

}  // namespace

TEST_CASE("udev names: letters, digits, '.', '_', '-' - 1-64 of them - no leading '.' or '-'") {
    CHECK(accepted("db"));
    CHECK(accepted("vol-1.data_2"));
    CHECK(accepted(std::string(64, 'a')));
    CHECK_FALSE(accepted(""));
    CHECK_FALSE(accepted(std::string(65, 'a')));
    CHECK_FALSE(accepted("."));
    CHECK_FALSE(accepted(".."));
    CHECK_FALSE(accepted(".hidden"));
    CHECK_FALSE(accepted("-n"));
    CHECK_FALSE(accepted("a/b"));
    CHECK_FALSE(accepted("../x"));
    CHECK_FALSE(accepted("has space"));
    CHECK_FALSE(accepted("nl\n"));
    CHECK_FALSE(accepted("ümlaut"));
}

TEST_CASE("udev names: the properties are KEY=VALUE lines, UNBD_NAME only when named") {
    daemon::DeviceState s;
    s.id = 5;
    s.uri = "nbd://server/disk";
    CHECK(daemon::udev_properties(s) == "UNBD_ID=5\nUNBD_URI=nbd://server/disk\n");
    s.name = "db";
    CHECK(daemon::udev_properties(s) == "UNBD_ID=5\nUNBD_URI=nbd://server/disk\nUNBD_NAME=db\n");
    s.uri = "nbd://server/a\nUNBD_NAME=evil";  // a line break must not make a second property
    CHECK(daemon::udev_properties(s) == "UNBD_ID=5\nUNBD_URI=nbd://server/a UNBD_NAME=evil\nUNBD_NAME=db\n");
}
