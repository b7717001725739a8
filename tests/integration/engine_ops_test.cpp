// Engine command mapping against real nbdkit: TRIM / WRITE_ZEROES read back
// as zeros, requests split at the server's advertised maximum, alignment to
// its minimum, FUA emulated with FLUSH where SEND_FUA is missing.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>

#include "integration/support/nbdkit.h"

using namespace unbd;
using namespace unbd::test;
using nbd::BlockOp;
using nbd::BlockRequest;

namespace {
std::vector<std::byte> pattern(std::size_t len, uint64_t seed) {
    std::vector<std::byte> d(len);
    fill_pattern(d.data(), len, seed);
    return d;
}
}  // namespace

TEST_CASE("engine: TRIM and WRITE_ZEROES (with and without NO_HOLE) read back as zeros") {
    NbdkitProcess server({"memory", "16M"});
    Oracle o(server.uri());
    o.pwrite(0, pattern(1 << 20, 1));
    auto fe = connect_engine(server.uri(), {.queue_depth = 8, .buffer_bytes = 65536});
    CHECK(fe->execute({.op = BlockOp::Trim, .offset = 0, .length = 65536}) == 65536);
    CHECK(fe->execute({.op = BlockOp::WriteZeroes, .offset = 65536, .length = 131072}) == 131072);
    CHECK(fe->execute({.op = BlockOp::WriteZeroes, .offset = 262144, .length = 4096, .fua = true, .no_hole = true}) ==
          4096);
    auto d = o.pread(0, 1 << 20);
    CHECK(all_zero(d.data(), 65536));  // the memory plugin really trims
    CHECK(all_zero(d.data() + 65536, 131072));
    CHECK(all_zero(d.data() + 262144, 4096));
    auto want = pattern(1 << 20, 1);
    CHECK(std::memcmp(d.data() + 196608, want.data() + 196608, 65536) == 0);
    CHECK(std::memcmp(d.data() + 266240, want.data() + 266240, (1 << 20) - 266240) == 0);
}

TEST_CASE("engine: requests above the advertised maximum are split, unaligned ones refused") {
    // error policy: the filter fails anything outside the advertised limits,
    // so a request the engine forgot to split would fail with EINVAL.
    NbdkitProcess server({"--filter=blocksize-policy", "memory", "16M", "blocksize-minimum=4096",
                          "blocksize-maximum=65536", "blocksize-error-policy=error"});
    auto fe = connect_engine(server.uri(), {.queue_depth = 4, .buffer_bytes = 1 << 20});
    fill_pattern(fe->buffer(0).data(), 1 << 20, 42);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 1 << 20, .length = 1 << 20}) == (1 << 20));
    std::memset(fe->buffer(0).data(), 0, 1 << 20);
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 1 << 20, .length = 1 << 20}) == (1 << 20));
    CHECK(check_pattern(fe->buffer(0).data(), 1 << 20, 42));
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 512, .length = 4096}) == -EINVAL);
    CHECK(fe->execute({.op = BlockOp::Write, .offset = 0, .length = 1000}) == -EINVAL);
    CHECK(fe->execute({.op = BlockOp::Read, .offset = 16 << 20, .length = 4096}) == -EINVAL);
    CHECK_FALSE(fe->session().failed());
    Oracle o(server.uri());
    std::vector<std::byte> d;
    for (uint32_t off = 0; off < (1u << 20); off += 65536) {
        auto piece = o.pread((1u << 20) + off, 65536);
        d.insert(d.end(), piece.begin(), piece.end());
    }
    CHECK(check_pattern(d.data(), 1 << 20, 42));
}
