// The control socket (daemon/control_socket.h) and the liveness verdict
// built on it (daemon/liveness.h), on this host: a Unix socket in a
// temporary state directory, no ublk, no root.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "common/fd.h"
#include "daemon/control_socket.h"
#include "daemon/liveness.h"

using namespace unbd;
using daemon::ControlCommand;
using daemon::Reach;

namespace {

// UNBD_STATE_DIR pointed at a fresh directory for the test's lifetime.
class TempStateDir {
public:
    TempStateDir() {
        char tmpl[] = "/tmp/unbd-ctl-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        ::setenv("UNBD_STATE_DIR", dir_.c_str(), 1);
    }
    ~TempStateDir() {
        ::unsetenv("UNBD_STATE_DIR");
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

private:
    std::string dir_;
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

daemon::ControlServer::Handler echo_handler(std::atomic<int>& detaches) {
    return [&detaches](const daemon::ControlRequest& r) -> nlohmann::json {
        switch (r.cmd) {
            case ControlCommand::Ping: return {{"pid", ::getpid()}};
            case ControlCommand::Detach: ++detaches; return nlohmann::json::object();
            case ControlCommand::Resize: return {{"shrink", r.allow_shrink}};
            default: throw Error("not here");
        }
    };
}

// A socket file that nobody listens on: what a SIGKILLed daemon leaves.
void leave_dead_socket(const std::string& path) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
}  // closed without listen(): connect() gets ECONNREFUSED

}  // namespace

TEST_CASE("control socket: a running daemon answers, its pid comes from SO_PEERCRED, its socket goes with it") {
    TempStateDir tmp;
    std::atomic<int> detaches{0};
    const std::string path = daemon::control_socket_path(5);
    {
        daemon::ControlServer server(5, echo_handler(detaches));
        struct stat st{};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);

        daemon::DaemonContact c = daemon::contact_daemon(5);
        REQUIRE(c.reach == Reach::Running);
        CHECK(c.pid == ::getpid());
        CHECK(daemon::ask(c, {ControlCommand::Ping}).at("pid") == ::getpid());
        CHECK_FALSE(c.conn.valid());  // one request per connection
        CHECK_THROWS_AS(daemon::ask(c, {ControlCommand::Ping}), Error);

        c = daemon::contact_daemon(5);
        CHECK(daemon::ask(c, {ControlCommand::Resize, true}).at("shrink") == true);
        c = daemon::contact_daemon(5);
        daemon::ask(c, {ControlCommand::Detach});
        CHECK(detaches == 1);
        c = daemon::contact_daemon(5);
        CHECK_THROWS_WITH_AS(daemon::ask(c, {ControlCommand::Stats}), "the daemon says: not here", Error);

        // A client that connects and says nothing does not block the next one.
        daemon::DaemonContact silent = daemon::contact_daemon(5);
        REQUIRE(silent.reach == Reach::Running);
        c = daemon::contact_daemon(5);
        CHECK(daemon::ask(c, {ControlCommand::Ping}, std::chrono::seconds(5)).at("ok") == true);

        // A second daemon for the same device is refused.
        CHECK_THROWS_AS(daemon::ControlServer(5, echo_handler(detaches)), Error);
    }
    CHECK_FALSE(exists(path));
    CHECK(daemon::contact_daemon(5).reach == Reach::Gone);
}

TEST_CASE("control socket: a killed daemon's socket file means gone, and a new daemon replaces it") {
    TempStateDir tmp;
    const std::string path = daemon::control_socket_path(2);
    leave_dead_socket(path);
    REQUIRE(exists(path));
    CHECK(daemon::contact_daemon(2).reach == Reach::Gone);  // ECONNREFUSED, no wait
    std::atomic<int> detaches{0};
    daemon::ControlServer server(2, echo_handler(detaches));
    CHECK(daemon::contact_daemon(2).reach == Reach::Running);
}

TEST_CASE("control socket: a state directory too long for a socket path is refused with what to do") {
    const std::string dir = "/tmp/" + std::string(120, 'x');
    ::setenv("UNBD_STATE_DIR", dir.c_str(), 1);
    std::atomic<int> detaches{0};
    CHECK_THROWS_WITH_AS(daemon::ControlServer(1, echo_handler(detaches)),
                         doctest::Contains("use a shorter UNBD_STATE_DIR"), Error);
    ::unsetenv("UNBD_STATE_DIR");
}

TEST_CASE("liveness: the state file's pid is believed only where it means the same process") {
    TempStateDir tmp;
    const daemon::ProcessIdentity me = daemon::own_identity();
    REQUIRE(me.pid_ns != 0);
    REQUIRE(me.start_time != 0);
    daemon::DeviceState s;
    s.id = 9;
    s.pid = 1;  // what a daemon in a container records

    SUBCASE("another pid namespace (a container's daemon, killed): gone, whatever runs as pid 1 here") {
        s.pid_ns = me.pid_ns + 1;
        s.pid_start = 1;
        CHECK(daemon::daemon_status(s).reach == Reach::Gone);
        CHECK_THROWS_WITH_AS(daemon::running_daemon(s, "resize it"), doctest::Contains("has no running daemon"),
                             Error);
    }
    SUBCASE("this namespace, the same process, its socket gone: unreachable, said in one line") {
        s.pid = ::getpid();
        s.pid_ns = me.pid_ns;
        s.pid_start = me.start_time;
        const daemon::DaemonStatus st = daemon::daemon_status(s);
        CHECK(st.reach == Reach::Unreachable);
        CHECK(st.why.find("control socket") != std::string::npos);
        CHECK_THROWS_AS(daemon::running_daemon(s, "resize it"), Error);
    }
    SUBCASE("this namespace, the pid reused by another process (other start time): gone") {
        s.pid = ::getpid();
        s.pid_ns = me.pid_ns;
        s.pid_start = me.start_time + 1;
        CHECK(daemon::daemon_status(s).reach == Reach::Gone);
    }
    SUBCASE("a state file from an unbd before control sockets: its live pid is the daemon") {
        s.pid = ::getpid();
        const daemon::DaemonStatus st = daemon::daemon_status(s);
        CHECK(st.reach == Reach::Running);
        CHECK(st.legacy);
        CHECK(st.pid == ::getpid());
    }
    SUBCASE("a socket that answers wins over any pid") {
        std::atomic<int> detaches{0};
        daemon::ControlServer server(9, echo_handler(detaches));
        s.pid_ns = me.pid_ns + 1;
        const daemon::DaemonStatus st = daemon::daemon_status(s);
        CHECK(st.reach == Reach::Running);
        CHECK_FALSE(st.legacy);
        CHECK(st.pid == ::getpid());
    }
}
