// Error: the exception every layer throws, carrying a message a person can
// act on ("export 'x' does not exist on nbd://host:10809"), optionally an
// errno. Lower layers return -errno; this is where it becomes text.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>

namespace unbd {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, int err = 0) : std::runtime_error(message), errno_(err) {}
    int error_number() const noexcept { return errno_; }

private:
    int errno_;
};

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
