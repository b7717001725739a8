// Error: the exception every layer throws, carrying a message a person can
// act on ("export 'x' does not exist on nbd://host:10809"), optionally an
// errno, and what kind of failure it is (main() makes that the exit
// status). Lower layers return -errno; this is where it becomes text.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace unbd {

// The kinds of failure, as `unbd` exit statuses (README, `unbd --help`).
enum class Failure : int {
    Failed = 1,    // tried, and it did not work: server, network, kernel, rights
    Usage = 2,     // the command line is wrong (option, value, URI): nothing was tried
    NoDevice = 3,  // the device named is not there (any more), or is not unbd's
};

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, int err = 0, Failure kind = Failure::Failed)
        : std::runtime_error(message), errno_(err), kind_(kind) {}
    int error_number() const noexcept { return errno_; }
    Failure kind() const noexcept { return kind_; }

private:
    int errno_;
    Failure kind_;
};

// A wrong command line: a value out of range, a malformed URI or device name.
inline Error usage_error(const std::string& message) { return Error(message, EINVAL, Failure::Usage); }
// The device named does not exist, or was not made by unbd.
inline Error no_device_error(const std::string& message) { return Error(message, ENODEV, Failure::NoDevice); }

// "what: strerror(err)" for a positive or negative errno.
inline std::string errno_text(const std::string& what, int err) {
    return what + ": " + std::strerror(err < 0 ? -err : err);
}

// Throws Error("what: strerror") when ret < 0 (a -errno); returns ret otherwise.
inline int check_errno(int ret, const std::string& what) {
    if (ret < 0) throw Error(errno_text(what, ret), -ret);
    return ret;
}

}  // namespace unbd
