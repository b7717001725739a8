// main() of the doctest binaries (unit and integration tests).
//
// CTest runs one test case per process, chosen by name (--test-case=NAME,
// see doctest_discover_tests). A name that does not survive that trip -- a
// ';' splits it into two CMake list items -- selects nothing, and doctest
// calls a run of nothing a success: 12 test cases once "passed" that way
// without running. Here a run that was given a test-case filter and ran no
// test case fails, saying why.
//
// SIGPIPE is ignored, as the daemon and the CLI do (src/nbd/session.h): an
// engine's WRITE_FIXED to a server that already closed (the hostile-server
// cases) must fail with EPIPE, not kill the test -- which it did, now and
// then, when no nbdkit helper happened to have ignored it first.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <string_view>

namespace {

// Counts the test cases that started; reports nothing.
struct RunCounter : doctest::IReporter {
    static inline int started = 0;
    explicit RunCounter(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override { ++started; }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("run-counter", 1, RunCounter);

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit()) return result;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if ((arg.starts_with("--test-case=") || arg.starts_with("-tc=")) && RunCounter::started == 0) {
            std::fprintf(stderr, "no test case matches %s: a ';' in a TEST_CASE name breaks CTest's filter\n", argv[i]);
            return 1;
        }
    }
    return result;
}
