// ublk I/O descriptor -> NBD BlockRequest, zero-copy mode choice and the
// default queue count: the decisions the queue and `attach` make.
#include <doctest/doctest.h>

#include <cerrno>

#include "common/error.h"
#include "daemon/attach_plan.h"
#include "daemon/detach.h"
#include "proto/ublk_uapi.h"
#include "ublk/io_mapping.h"
#include "ublk/zero_copy.h"

using namespace unbd;
namespace P = unbd::proto::ublk;

namespace {

P::ublksrv_io_desc iod(P::IoOp op, uint32_t flags, uint64_t sector, uint32_t sectors) {
    P::ublksrv_io_desc d{};
    d.op_flags = static_cast<uint32_t>(op) | flags;
    d.nr_sectors = sectors;
    d.start_sector = sector;
    return d;
}

ublk::CommandSupport all_commands() {
    ublk::CommandSupport c;
    c.flush = c.fua = c.trim = c.write_zeroes = c.write = true;
    return c;
}

nbd::BlockRequest request(const ublk::Mapped& m) {
    REQUIRE(std::holds_alternative<nbd::BlockRequest>(m));
    return std::get<nbd::BlockRequest>(m);
}

int error(const ublk::Mapped& m) {
    REQUIRE(std::holds_alternative<int>(m));
    return std::get<int>(m);
}

}  // namespace

TEST_CASE("ublk ops: READ and WRITE keep tag, byte offset and length - FUA passes through") {
    auto r = request(ublk::to_block_request(iod(P::IoOp::Read, 0, 8, 16), 5, all_commands()));
    CHECK(r.op == nbd::BlockOp::Read);
    CHECK(r.tag == 5);
    CHECK(r.offset == 8 * 512);
    CHECK(r.length == 16 * 512);
    CHECK_FALSE(r.fua);

    auto w = request(ublk::to_block_request(iod(P::IoOp::Write, P::UBLK_IO_F_FUA, 1, 1), 7, all_commands()));
    CHECK(w.op == nbd::BlockOp::Write);
    CHECK(w.fua);

    auto no_fua = all_commands();
    no_fua.fua = false;
    CHECK_FALSE(request(ublk::to_block_request(iod(P::IoOp::Write, P::UBLK_IO_F_FUA, 1, 1), 7, no_fua)).fua);
}

TEST_CASE("ublk ops: FLUSH, DISCARD -> TRIM, WRITE_ZEROES with NOUNMAP -> no_hole") {
    auto f = request(ublk::to_block_request(iod(P::IoOp::Flush, 0, 0, 0), 1, all_commands()));
    CHECK(f.op == nbd::BlockOp::Flush);
    CHECK(f.length == 0);

    auto t = request(ublk::to_block_request(iod(P::IoOp::Discard, 0, 100, 2048), 2, all_commands()));
    CHECK(t.op == nbd::BlockOp::Trim);
    CHECK(t.offset == 100 * 512);
    CHECK(t.length == 2048 * 512);

    auto z = request(ublk::to_block_request(iod(P::IoOp::WriteZeroes, 0, 0, 8), 3, all_commands()));
    CHECK(z.op == nbd::BlockOp::WriteZeroes);
    CHECK_FALSE(z.no_hole);
    auto zk = request(ublk::to_block_request(iod(P::IoOp::WriteZeroes, P::UBLK_IO_F_NOUNMAP, 0, 8), 3, all_commands()));
    CHECK(zk.no_hole);
}

TEST_CASE("ublk ops: what the server did not advertise never reaches it") {
    ublk::CommandSupport none;
    none.write = true;
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Flush, 0, 0, 0), 0, none)) == -EOPNOTSUPP);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Discard, 0, 0, 8), 0, none)) == -EOPNOTSUPP);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::WriteZeroes, 0, 0, 8), 0, none)) == -EOPNOTSUPP);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::ZoneAppend, 0, 0, 8), 0, all_commands())) == -EOPNOTSUPP);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::WriteSame, 0, 0, 8), 0, all_commands())) == -EOPNOTSUPP);
    none.write = false;
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Write, 0, 0, 8), 0, none)) == -EROFS);
}

TEST_CASE("ublk ops: commit results are byte counts for READ/WRITE, 0 otherwise, errors unchanged") {
    nbd::BlockRequest r;
    r.op = nbd::BlockOp::Read;
    r.length = 4096;
    CHECK(ublk::commit_result(r, 0) == 4096);
    CHECK(ublk::commit_result(r, 4096) == 4096);
    CHECK(ublk::commit_result(r, -EIO) == -EIO);
    r.op = nbd::BlockOp::Trim;
    CHECK(ublk::commit_result(r, 4096) == 0);
}

TEST_CASE("ublk ops: a byte range the request cannot hold is refused, not truncated (fuzz: io_mapping)") {
    // tests/fuzz/corpus/io_mapping/regress-range-overflow: a READ of 0xfffffe00
    // sectors at sector 2^64-256 became a 1 MiB-ish read at a wrapped offset.
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Read, 0, ~0ull - 0xff, 0xfffffe00), 0, all_commands())) == -EINVAL);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Write, 0, 0, 1u << 23), 0, all_commands())) == -EINVAL);
    CHECK(error(ublk::to_block_request(iod(P::IoOp::Discard, 0, 1ull << 55, 8), 0, all_commands())) == -EINVAL);
    // The largest that fit: READ/WRITE commit their length as an int, TRIM does not.
    CHECK(request(ublk::to_block_request(iod(P::IoOp::Read, 0, ~0ull >> 9, (1u << 22) - 1), 0, all_commands()))
              .length == ((1u << 22) - 1) * 512);
    CHECK(request(ublk::to_block_request(iod(P::IoOp::Discard, 0, 0, (1u << 23) - 1), 0, all_commands())).length ==
          ((1u << 23) - 1) * 512u);
    CHECK(request(ublk::to_block_request(iod(P::IoOp::Flush, 0, ~0ull, ~0u), 0, all_commands())).op ==
          nbd::BlockOp::Flush);
}

TEST_CASE("zero copy: auto picks auto-buf-reg when the kernel has it, copy mode otherwise") {
    uring::SocketOpSupport ops;
    ops.read_fixed = ops.write_fixed = true;
    auto c = ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, ops);
    CHECK(c.zero_copy());
    CHECK(c.payload == nbd::PayloadOps::ReadWriteFixed);
    CHECK(c.name() == "auto-buf-reg/read_write_fixed");

    auto old = ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_SUPPORT_ZERO_COPY, ops);
    CHECK_FALSE(old.zero_copy());
    CHECK(old.name() == "off/user_copy");
    CHECK(old.reason.find("AUTO_BUF_REG") != std::string::npos);

    // send/recv + FIXED_BUF (7.2+) is preferred, but only when the probe
    // found it working; asking for it without is an error.
    CHECK_THROWS_AS(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, ops,
                                           nbd::PayloadOps::SendRecvFixed),
                    Error);
    ops.send_fixed = ops.recv_fixed = true;
    CHECK(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, ops).name() ==
          "auto-buf-reg/send_recv_fixed");
    CHECK(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, ops,
                                 ublk::parse_payload_ops("read-write-fixed"))
              .payload == nbd::PayloadOps::ReadWriteFixed);
    CHECK_THROWS_AS(ublk::parse_payload_ops("sendfile"), Error);
}

TEST_CASE("zero copy: off is copy mode - on refuses a kernel without auto-buf-reg") {
    uring::SocketOpSupport ops;
    ops.read_fixed = ops.write_fixed = true;
    CHECK_FALSE(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Off, P::UBLK_F_AUTO_BUF_REG, ops).zero_copy());
    CHECK(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Off, P::UBLK_F_AUTO_BUF_REG, ops).payload ==
          nbd::PayloadOps::UserCopy);
    CHECK_THROWS_AS(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, ops,
                                           nbd::PayloadOps::UserCopy),
                    Error);
    CHECK(ublk::choose_zero_copy(ublk::ZeroCopyRequest::On, P::UBLK_F_AUTO_BUF_REG, ops).zero_copy());
    CHECK_THROWS_AS(ublk::choose_zero_copy(ublk::ZeroCopyRequest::On, 0, ops), Error);
    // No fixed-buffer op on sockets: copy mode still works, zero copy cannot.
    CHECK_FALSE(ublk::choose_zero_copy(ublk::ZeroCopyRequest::Auto, P::UBLK_F_AUTO_BUF_REG, {}).zero_copy());
    CHECK_THROWS_AS(ublk::choose_zero_copy(ublk::ZeroCopyRequest::On, P::UBLK_F_AUTO_BUF_REG, {}), Error);
    CHECK_THROWS_AS(ublk::parse_zero_copy("maybe"), Error);
}

TEST_CASE("queues: one without multi-conn (warning when more were asked), else -q or min(CPUs, 4)") {
    std::string warning;
    CHECK(daemon::choose_queue_count(std::nullopt, false, 8, &warning) == 1);
    CHECK(warning.empty());
    CHECK(daemon::choose_queue_count(3u, false, 8, &warning) == 1);
    CHECK(warning.find("CAN_MULTI_CONN") != std::string::npos);
    warning.clear();
    CHECK(daemon::choose_queue_count(std::nullopt, true, 8, &warning) == 4);
    CHECK(daemon::choose_queue_count(std::nullopt, true, 2, &warning) == 2);
    CHECK(daemon::choose_queue_count(3u, true, 2, &warning) == 3);
    CHECK(warning.empty());
}

TEST_CASE("device refs: /dev/ublkbN, ublkbN and N") {
    CHECK(daemon::parse_device_ref("/dev/ublkb3") == 3);
    CHECK(daemon::parse_device_ref("ublkb12") == 12);
    CHECK(daemon::parse_device_ref("7") == 7);
    CHECK_THROWS_AS(daemon::parse_device_ref("/dev/sda"), Error);
    CHECK_THROWS_AS(daemon::parse_device_ref(""), Error);
}
