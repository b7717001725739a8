// replay_log against a server that runs requests in parallel and finishes
// them out of order, as the NBD spec allows and nbdkit's parallel plugins
// do: two acknowledged writes to the same block must land in the order
// they were acknowledged, or the older one wins and an acknowledged write
// is lost. (Seen as a rare bad read in the kill-under-load reconnect test.)
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "integration/support/nbdkit.h"
#include "nbd/connect.h"
#include "nbd/durability_log.h"
#include "nbd/replay.h"
#include "nbd/uri.h"

using namespace unbd;
using namespace unbd::test;
using namespace std::chrono_literals;

namespace {

// An nbdkit `eval` plugin over a file, parallel thread model, whose pwrite
// sleeps 0.5 s when the data starts with byte 1: the first of two
// overlapping writes then finishes last, unless the client waited for it.
std::vector<std::string> slow_first_write_server(const std::string& disk) {
    const std::string pwrite =
        "pwrite=f=$tmpdir/w.$$.$RANDOM; cat > $f; "
        "[ \"$(head -c1 $f | od -An -tu1 | tr -d ' ')\" = 1 ] && sleep 0.5; "
        "dd if=$f of=" + disk + " oflag=seek_bytes seek=$4 conv=notrunc status=none; rm -f $f";
    return {"eval",
            "thread_model=echo parallel",
            "get_size=echo 1048576",
            "pread=dd if=" + disk + " iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none",
            pwrite,
            "can_write=exit 0",
            "can_flush=exit 0",
            "flush=sync " + disk};
}

void log_write(nbd::DurabilityLog& log, uint64_t offset, uint32_t length, std::byte value) {
    const auto r = log.reserve(length);
    REQUIRE(r);
    std::memset(log.data(*r), static_cast<int>(value), length);
    log.acknowledged(*r, {.op = nbd::BlockOp::Write, .offset = offset, .length = length});
}

}  // namespace

TEST_CASE("replay: overlapping writes land in acknowledgement order on a server that reorders") {
    const DiskFile disk(1 << 20);

    NbdkitProcess server(slow_first_write_server(disk.path));
    nbd::DurabilityLog log(nbd::Durability::Replay, 1 << 20);
    log_write(log, 0, 4096, std::byte{1});      // older, slow on this server
    log_write(log, 0, 4096, std::byte{2});      // newer, same block: must win
    log_write(log, 8192, 4096, std::byte{1});   // older, slow
    log_write(log, 4096, 8192, std::byte{3});   // newer, overlaps its second half
    log_write(log, 65536, 4096, std::byte{4});  // apart from the rest

    nbd::Connection c = nbd::connect_export(nbd::parse_uri(server.uri()), {});
    uint64_t mark = 0;
    const auto entries = log.unflushed(&mark);
    REQUIRE(entries.size() == 5);
    const nbd::ReplayResult r = nbd::replay_log(c.socket.get(), log, entries, c.info, 10s);
    CHECK(r.commands == 6);  // five writes and the FLUSH
    c.socket.reset();

    Oracle o(server.uri());
    const auto block_is = [&](uint64_t offset, std::size_t length, uint8_t value) {
        const auto data = o.pread(offset, length);
        for (std::byte b : data)
            if (b != std::byte{value}) return false;
        return true;
    };
    CHECK(block_is(0, 4096, 2));
    CHECK(block_is(4096, 8192, 3));
    CHECK(block_is(65536, 4096, 4));
}
