// systemd's notify protocol, spoken directly (one datagram to
// $NOTIFY_SOCKET; sd_notify(3) describes it): READY=1 once /dev/ublkbN is
// live, STOPPING=1 when detaching, STATUS= lines for `systemctl status`.
// Without $NOTIFY_SOCKET (not under systemd) it does nothing. Never throws:
// a lost notification must not take the disk down.
#pragma once

#include <string>

namespace unbd::daemon {

// Sends `state` (newline-separated assignments); false when it could not.
bool notify_systemd(const std::string& state) noexcept;

}  // namespace unbd::daemon
