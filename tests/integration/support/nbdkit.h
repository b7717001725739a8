// NbdkitProcess: one nbdkit in the foreground (-f --exit-with-parent) on a
// private Unix socket or a free loopback TCP port, killed when destroyed.
// EngineClient: connect_export + SyntheticFrontend, ready to run requests.
// Oracle: a libnbd handle on the same server, to check what the engine did.
#pragma once

#include <libnbd.h>

#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "nbd/synthetic_frontend.h"

namespace unbd::test {

class NbdkitProcess {
public:
    // args: plugin (and filters) and their parameters, e.g. {"memory", "64M"}.
    explicit NbdkitProcess(std::vector<std::string> args, bool tcp = false,
                           std::vector<std::string> options = {});
    ~NbdkitProcess();
    NbdkitProcess(const NbdkitProcess&) = delete;
    NbdkitProcess& operator=(const NbdkitProcess&) = delete;

    const std::string& uri() const { return uri_; }
    const std::string& dir() const { return dir_; }  // private; removed on destruction
    pid_t pid() const { return pid_; }
    void kill_now();  // SIGKILL and reap
    // SIGKILL, then the same command again on the same socket or port
    // (optionally with other plugin arguments); returns once it serves.
    void restart(std::optional<std::vector<std::string>> args = std::nullopt);
    void pause();   // SIGSTOP: connections stay open, nothing is answered
    void resume();  // SIGCONT

private:
    void spawn();
    std::string dir_;
    std::string uri_;
    std::vector<std::string> prefix_;  // nbdkit and its options, before the plugin
    std::vector<std::string> args_;    // plugin, filters and their parameters
    pid_t pid_ = -1;
};

// A zero-filled file of `size` bytes under /tmp, for nbdkit's `file` plugin
// (data outlives the nbdkit process); removed on destruction.
struct DiskFile {
    std::string path;
    explicit DiskFile(uint64_t size);
    ~DiskFile();
    DiskFile(const DiskFile&) = delete;
    DiskFile& operator=(const DiskFile&) = delete;
};

std::unique_ptr<nbd::SyntheticFrontend> connect_engine(const std::string& uri,
                                                       const nbd::SyntheticOptions& options = {});

// libnbd handle; throws on any failure so a broken oracle never "passes".
class Oracle {
public:
    explicit Oracle(const std::string& uri);
    ~Oracle();
    Oracle(const Oracle&) = delete;
    Oracle& operator=(const Oracle&) = delete;

    std::vector<std::byte> pread(uint64_t offset, std::size_t length);
    void pwrite(uint64_t offset, const std::vector<std::byte>& data);
    int64_t size();

private:
    nbd_handle* h_ = nullptr;
};

// Deterministic bytes for (seed, offset): different per request, easy to check.
void fill_pattern(std::byte* p, std::size_t len, uint64_t seed);
bool check_pattern(const std::byte* p, std::size_t len, uint64_t seed);
bool all_zero(const std::byte* p, std::size_t len);

}  // namespace unbd::test
