#include "daemon/mount_namespace.h"

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/file_text.h"

namespace unbd::daemon {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape_octal(std::string_view s) {
    const auto octal = [](char c) { return c >= '0' && c <= '7'; };
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string read_text(const std::filesystem::path& p) { return read_file_text(p.string()).value_or(""); }

}  // namespace

std::vector<std::string> mounts_of_devices(std::string_view mountinfo, const std::vector<std::string>& devices) {
    std::vector<std::string> points;
    std::istringstream lines{std::string(mountinfo)};
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::string id, parent, dev, root, point;
        if (!(fields >> id >> parent >> dev >> root >> point)) continue;
        if (std::find(devices.begin(), devices.end(), dev) != devices.end()) points.push_back(unescape_octal(point));
    }
    std::reverse(points.begin(), points.end());
    return points;
}

std::vector<std::string> ublk_block_devices() {
    namespace fs = std::filesystem;
    std::vector<std::string> devices;
    std::error_code ec;
    for (const auto& disk : fs::directory_iterator("/sys/block", ec)) {
        if (disk.path().filename().string().rfind("ublkb", 0) != 0) continue;
        const auto add = [&](const fs::path& dir) {
            std::string dev = read_text(dir / "dev");
            while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
            if (!dev.empty()) devices.push_back(dev);
        };
        add(disk.path());
        for (const auto& part : fs::directory_iterator(disk.path(), ec))  // partitions: ublkbNpM/dev
            if (part.path().filename().string().rfind(disk.path().filename().string(), 0) == 0) add(part.path());
    }
    return devices;
}

void isolate_mount_namespace() {
    // A user cannot unshare without CAP_SYS_ADMIN, and needs no copy: it
    // stays in its session's namespace, which outlives the daemon, so the
    // daemon's exit never tears down a mount of its own disk.
    if (::geteuid() != 0) return;
    if (::unshare(CLONE_NEWNS) != 0) {
        spdlog::warn("unshare(CLONE_NEWNS) failed: {}", std::strerror(errno));
        return;
    }
    // Private, so mounts of our device made outside never propagate in.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        spdlog::warn("cannot make the daemon's mounts private: {}", std::strerror(errno));
    }
    const std::vector<std::string> devices = ublk_block_devices();
    if (devices.empty()) return;
    for (const std::string& point : mounts_of_devices(read_text("/proc/self/mountinfo"), devices)) {
        if (point == "/") continue;  // a root on ublk cannot be let go of
        if (::umount2(point.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
            spdlog::warn("cannot let go of the copy of {} in the daemon's mount namespace: {}", point,
                         std::strerror(errno));
    }
}

}  // namespace unbd::daemon
