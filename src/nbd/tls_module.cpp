// Finds and loads unbd-tls.so (contract in tls_module.h).
#include "nbd/tls_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <mutex>
#include <string>

#include "common/error.h"

// Defined only where the module's objects are linked in (the module itself,
// the test programs); null in `unbd`, which must not pull them in.
extern "C" const unbd::nbd::TlsModule* UNBD_TLS_MODULE_ENTRY() __attribute__((weak));

namespace unbd::nbd {
namespace {

#define UNBD_STRINGIFY2(x) #x
#define UNBD_STRINGIFY(x) UNBD_STRINGIFY2(x)
constexpr const char* kEntryName = UNBD_STRINGIFY(UNBD_TLS_MODULE_ENTRY);
constexpr const char* kFileName = "unbd-tls.so";
constexpr const char* kInstalledDir = "/../lib/unbd";  // from the binary's directory

std::string running_binary_dir() {
    char path[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) throw Error(errno_text("TLS: cannot find the running binary (readlink /proc/self/exe)", errno), errno);
    std::string p(path, static_cast<std::size_t>(n));
    return p.substr(0, p.rfind('/'));
}

const TlsModule* load() {
    if (UNBD_TLS_MODULE_ENTRY) return UNBD_TLS_MODULE_ENTRY();
    const std::string dir = running_binary_dir();
    const std::string candidates[] = {dir + "/" + kFileName, dir + kInstalledDir + "/" + kFileName};
    for (const std::string& file : candidates) {
        if (::access(file.c_str(), F_OK) != 0) continue;
        // RTLD_NODELETE: what it made may be destroyed after any dlclose.
        void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!handle) {
            const char* e = ::dlerror();
            throw Error("TLS: cannot load " + file + ": " + (e ? e : "?") + " (is libssl3 installed?)", ENOENT);
        }
        using Entry = const TlsModule* (*)();
        auto entry = reinterpret_cast<Entry>(::dlsym(handle, kEntryName));
        if (!entry)
            throw Error("TLS: " + file + " is not the TLS module of this unbd (no " + std::string(kEntryName) +
                            "); reinstall unbd so that the binary and its module match",
                        ENOENT);
        return entry();
    }
    throw Error("TLS: this unbd has no TLS module (" + std::string(kFileName) + " is neither in " + dir + " nor in " + dir +
                    kInstalledDir + "); reinstall unbd, or build it with `cmake --build`",
                ENOENT);
}

}  // namespace

const TlsModule& tls_module() {
    static std::once_flag once;
    static const TlsModule* module = nullptr;
    std::call_once(once, [] { module = load(); });
    return *module;
}

}  // namespace unbd::nbd
