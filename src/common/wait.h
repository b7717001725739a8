// wait_for: polls a condition until it holds or a deadline passes, for the
// few places that wait on the kernel with no event to block on (a device
// node appearing, a process or device going away).
#pragma once

#include <chrono>
#include <thread>

namespace unbd {

// True once pred() holds; false if it still does not after `timeout`.
template <typename Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout,
              std::chrono::milliseconds interval = std::chrono::milliseconds(50)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(interval);
    }
    return true;
}

}  // namespace unbd
