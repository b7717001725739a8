// The export -> ublk parameter mapping (DESIGN.md "Mapping the export onto
// the device"), checked field by field.
#include <doctest/doctest.h>

#include "common/error.h"
#include "ublk/device_params.h"

using namespace unbd;
namespace P = unbd::proto::ublk;

namespace {

nbd::ExportInfo export_with(uint16_t flags, uint64_t size = 1 << 30) {
    nbd::ExportInfo info;
    info.size = size;
    info.transmission_flags = proto::kFlagHasFlags | flags;
    return info;
}

}  // namespace

TEST_CASE("ublk params: a plain export gets 512-byte blocks, its size and nothing it did not ask for") {
    const auto d = ublk::map_export(export_with(0), {});
    CHECK(d.params.types == P::UBLK_PARAM_TYPE_BASIC);
    CHECK(d.params.len == sizeof(P::ublk_params));
    CHECK(d.params.basic.logical_bs_shift == 9);
    CHECK(d.params.basic.physical_bs_shift == 12);
    CHECK(d.params.basic.dev_sectors == (uint64_t{1} << 30) >> 9);
    CHECK(d.params.basic.attrs == 0);
    CHECK(d.params.basic.max_sectors == (512u << 10) >> 9);
    CHECK(d.size_bytes == uint64_t{1} << 30);
    CHECK_FALSE(d.read_only);
    CHECK(d.warnings.empty());
}

TEST_CASE("ublk params: flush gives a volatile cache, FUA only together with flush") {
    auto with_flush = ublk::map_export(export_with(proto::kFlagSendFlush), {});
    CHECK(with_flush.params.basic.attrs == P::UBLK_ATTR_VOLATILE_CACHE);
    auto both = ublk::map_export(export_with(proto::kFlagSendFlush | proto::kFlagSendFua), {});
    CHECK(both.params.basic.attrs == (P::UBLK_ATTR_VOLATILE_CACHE | P::UBLK_ATTR_FUA));
    auto fua_only = ublk::map_export(export_with(proto::kFlagSendFua), {});
    CHECK(fua_only.params.basic.attrs == 0);
}

TEST_CASE("ublk params: read-only and rotational come from the export; --read-only forces it") {
    auto ro = ublk::map_export(export_with(proto::kFlagReadOnly | proto::kFlagRotational |
                                           proto::kFlagSendFlush | proto::kFlagSendTrim), {});
    CHECK(ro.read_only);
    CHECK(ro.params.basic.attrs == (P::UBLK_ATTR_READ_ONLY | P::UBLK_ATTR_ROTATIONAL));
    CHECK((ro.params.types & P::UBLK_PARAM_TYPE_DISCARD) == 0);

    ublk::MappingOptions force;
    force.force_read_only = true;
    auto forced = ublk::map_export(export_with(proto::kFlagSendFlush | proto::kFlagSendWriteZeroes), force);
    CHECK(forced.read_only);
    CHECK(forced.params.basic.attrs == P::UBLK_ATTR_READ_ONLY);
    CHECK((forced.params.types & P::UBLK_PARAM_TYPE_DISCARD) == 0);
    CHECK_FALSE(ublk::command_support(export_with(proto::kFlagSendFlush), true).flush);
}

TEST_CASE("ublk params: discard and write-zeroes only when advertised") {
    auto trim = ublk::map_export(export_with(proto::kFlagSendTrim), {});
    REQUIRE((trim.params.types & P::UBLK_PARAM_TYPE_DISCARD) != 0);
    CHECK(trim.params.discard.max_discard_sectors > 0);
    CHECK(trim.params.discard.max_write_zeroes_sectors == 0);
    CHECK(trim.params.discard.discard_granularity == 512);
    CHECK(trim.params.discard.max_discard_segments == 1);

    auto wz = ublk::map_export(export_with(proto::kFlagSendWriteZeroes), {});
    REQUIRE((wz.params.types & P::UBLK_PARAM_TYPE_DISCARD) != 0);
    CHECK(wz.params.discard.max_discard_sectors == 0);
    CHECK(wz.params.discard.max_write_zeroes_sectors > 0);
    // One request's byte length must fit NBD's 32-bit length field.
    CHECK(uint64_t{wz.params.discard.max_write_zeroes_sectors} * 512 <= UINT32_MAX);
}

TEST_CASE("ublk params: block sizes from NBD_INFO_BLOCK_SIZE") {
    auto info = export_with(0, (uint64_t{1} << 30) + 1000);
    info.block_size_advertised = true;
    info.block_size_min = 4096;
    info.block_size_preferred = 65536;
    info.block_size_max = 256 << 10;
    const auto d = ublk::map_export(info, {});
    CHECK(d.logical_block_size == 4096);
    CHECK(d.params.basic.logical_bs_shift == 12);
    CHECK(d.params.basic.physical_bs_shift == 12);
    CHECK(d.params.basic.io_opt_shift == 16);
    CHECK(d.params.basic.max_sectors == (256u << 10) >> 9);  // server max < our buffer
    CHECK(d.size_bytes == uint64_t{1} << 30);                // rounded down to 4096
    CHECK(d.warnings.size() == 1);

    info.block_size_max = 32 << 20;
    CHECK(ublk::map_export(info, {}).params.basic.max_sectors == (512u << 10) >> 9);  // our buffer
}

TEST_CASE("ublk params: small server minimums still give 512-byte blocks") {
    auto info = export_with(0);
    info.block_size_advertised = true;
    info.block_size_min = 1;
    info.block_size_preferred = 4096;
    info.block_size_max = 1 << 20;
    CHECK(ublk::map_export(info, {}).logical_block_size == 512);
}

TEST_CASE("ublk params: exports that cannot be a block device are refused") {
    auto big = export_with(0);
    big.block_size_advertised = true;
    big.block_size_min = 65536;
    CHECK_THROWS_AS(ublk::map_export(big, {}), Error);
    auto odd = export_with(0);
    odd.block_size_advertised = true;
    odd.block_size_min = 3000;
    CHECK_THROWS_AS(ublk::map_export(odd, {}), Error);
    CHECK_THROWS_AS(ublk::map_export(export_with(0, 100), {}), Error);
}

TEST_CASE("ublk params: recovery accepts the same or a grown export, and says what no longer fits") {
    const uint16_t all = proto::kFlagSendFlush | proto::kFlagSendFua | proto::kFlagSendTrim |
                         proto::kFlagSendWriteZeroes;
    const auto device = ublk::map_export(export_with(all), {}).params;
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all), {})) == "");
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all, 2ull << 30), {})) == "");
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all, 1 << 29), {})) ==
          "the export (536870912 bytes) is smaller than the device (1073741824 bytes)");
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all & ~proto::kFlagSendFua), {})) ==
          "the server no longer offers FUA");
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all & ~proto::kFlagSendTrim), {})) ==
          "the server no longer offers TRIM");
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(export_with(all | proto::kFlagReadOnly), {})) ==
          "the export is read-only now");
    auto big_blocks = export_with(all);
    big_blocks.block_size_advertised = true;
    big_blocks.block_size_min = 4096;
    CHECK(ublk::recovery_mismatch(device, ublk::map_export(big_blocks, {})) ==
          "the export's block size is 4096, the device's 512");
}
