#include "integration/support/nbdkit.h"

#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "nbd/connect.h"
#include "nbd/uri.h"

namespace unbd::test {

namespace {

int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

}  // namespace

NbdkitProcess::NbdkitProcess(std::vector<std::string> args, bool tcp, std::vector<std::string> options) {
    ::signal(SIGPIPE, SIG_IGN);  // a dead server must give EPIPE, not kill the test
    char tmpl[] = "/tmp/unbd-engine.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::vector<std::string> argv = {"nbdkit", "-f", "--exit-with-parent"};
    if (tcp) {
        const int port = free_port();
        argv.insert(argv.end(), {"-i", "127.0.0.1", "-p", std::to_string(port)});
        uri_ = "nbd://127.0.0.1:" + std::to_string(port) + "/";
    } else {
        const std::string sock = dir_ + "/sock";
        argv.insert(argv.end(), {"-U", sock});
        uri_ = "nbd+unix:///?socket=" + sock;
    }
    argv.insert(argv.end(), options.begin(), options.end());
    prefix_ = std::move(argv);
    args_ = std::move(args);
    spawn();
}

void NbdkitProcess::spawn() {
    std::vector<std::string> argv = prefix_;
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        ::execvp("nbdkit", cargv.data());
        ::_exit(127);
    }
    // Ready when libnbd can connect (nbdkit creates the socket before serving).
    // A server that requires TLS refuses the plain handshake: for it, a
    // connection that reaches the handshake is enough.
    bool tls = false;
    for (auto& a : prefix_) tls = tls || a == "--tls=require";
    for (int i = 0; i < 200; ++i) {
        nbd_handle* h = nbd_create();
        const bool ok = tls ? nbd_connect_uri(h, uri_.c_str()) == 0 || nbd_get_errno() == ENOTSUP
                            : nbd_connect_uri(h, uri_.c_str()) == 0;
        nbd_close(h);
        if (ok) return;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("nbdkit exited at startup");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    kill_now();
    throw std::runtime_error("nbdkit did not start serving " + uri_);
}

void NbdkitProcess::restart(std::optional<std::vector<std::string>> args) {
    kill_now();
    if (args) args_ = std::move(*args);
    // A Unix socket left by the killed nbdkit would make the new one fail.
    const std::string sock = dir_ + "/sock";
    ::unlink(sock.c_str());
    spawn();
}

// SIGSTOP is delivered asynchronously: a thread may still answer a request
// just after kill() returns. Wait until every thread is stopped ('T').
void NbdkitProcess::pause() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGSTOP);
    const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
    for (int i = 0; i < 400; ++i) {
        bool all_stopped = true;
        std::error_code ec;
        for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
            std::ifstream stat(t.path() / "stat");
            std::string line;
            std::getline(stat, line);
            const auto close = line.rfind(')');
            if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') all_stopped = false;
        }
        if (all_stopped) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    throw std::runtime_error("nbdkit did not stop within 2 s of SIGSTOP");
}

void NbdkitProcess::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void NbdkitProcess::kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

NbdkitProcess::~NbdkitProcess() {
    kill_now();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::unique_ptr<nbd::SyntheticFrontend> connect_engine(const std::string& uri, const nbd::SyntheticOptions& options) {
    nbd::Connection c = nbd::connect_export(nbd::parse_uri(uri), nbd::ConnectOptions{});
    return std::make_unique<nbd::SyntheticFrontend>(std::move(c), options);  // with its TLS tunnel, if any
}

Oracle::Oracle(const std::string& uri) : h_(nbd_create()) {
    // nbds URIs name their credentials' files (tls-certificates, tls-psk-file).
    if (!h_ || nbd_set_uri_allow_local_file(h_, true) != 0 || nbd_connect_uri(h_, uri.c_str()) != 0)
        throw std::runtime_error(std::string("libnbd connect: ") + nbd_get_error());
}

Oracle::~Oracle() {
    if (h_) {
        nbd_shutdown(h_, 0);
        nbd_close(h_);
    }
}

std::vector<std::byte> Oracle::pread(uint64_t offset, std::size_t length) {
    std::vector<std::byte> out(length);
    if (nbd_pread(h_, out.data(), length, offset, 0) != 0)
        throw std::runtime_error(std::string("libnbd pread: ") + nbd_get_error());
    return out;
}

void Oracle::pwrite(uint64_t offset, const std::vector<std::byte>& data) {
    if (nbd_pwrite(h_, data.data(), data.size(), offset, 0) != 0)
        throw std::runtime_error(std::string("libnbd pwrite: ") + nbd_get_error());
}

int64_t Oracle::size() { return nbd_get_size(h_); }

DiskFile::DiskFile(uint64_t size) {
    char tmpl[] = "/tmp/unbd-disk.XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error(std::string("mkstemp in /tmp failed: ") + std::strerror(errno));
    const bool sized = ::ftruncate(fd, static_cast<off_t>(size)) == 0;
    const int ftruncate_errno = errno;
    ::close(fd);
    path = tmpl;
    if (!sized) {
        ::unlink(tmpl);
        throw std::runtime_error("ftruncate of " + path + " failed: " + std::strerror(ftruncate_errno));
    }
}

DiskFile::~DiskFile() { ::unlink(path.c_str()); }

void fill_pattern(std::byte* p, std::size_t len, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (std::size_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p + i, &x, std::min<std::size_t>(8, len - i));
    }
}

bool check_pattern(const std::byte* p, std::size_t len, uint64_t seed) {
    std::vector<std::byte> want(len);
    fill_pattern(want.data(), len, seed);
    return std::memcmp(p, want.data(), len) == 0;
}

bool all_zero(const std::byte* p, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i)
        if (p[i] != std::byte{0}) return false;
    return true;
}

}  // namespace unbd::test
