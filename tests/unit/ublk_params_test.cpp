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

TEST_CASE("ublk params: read-only and rotational come from the export - --read-only forces it") {
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
    CHECK_THROWS_WITH_AS(ublk::map_export(export_with(0, 0), {}), doctest::Contains("(0 bytes)"), Error);
    auto tiny_max = export_with(0);  // the handshake lets max 256 >= min 1 pass; no 512-byte block fits
    tiny_max.block_size_advertised = true;
    tiny_max.block_size_min = 1;
    tiny_max.block_size_preferred = 256;
    tiny_max.block_size_max = 256;
    CHECK_THROWS_WITH_AS(ublk::map_export(tiny_max, {}), doctest::Contains("maximum request size 256"), Error);
}

TEST_CASE("ublk params: absurd but harmless export facts are rounded or clamped") {
    // Size just below 2^63 (the handshake's limit): whole blocks, with a warning.
    const auto huge = ublk::map_export(export_with(0, uint64_t{INT64_MAX}), {});
    CHECK(huge.size_bytes == (uint64_t{1} << 63) - 512);
    CHECK(huge.params.basic.dev_sectors == (uint64_t{1} << 54) - 1);
    CHECK(huge.warnings.size() == 1);
    // A preferred size above 32 MiB, even above the maximum, is only a hint:
    // io_opt stays within the largest request, physical within a page.
    auto pref = export_with(0);
    pref.block_size_advertised = true;
    pref.block_size_min = 512;
    pref.block_size_preferred = 64u << 20;
    for (const uint32_t max : {0xffffffffu, 32u << 20}) {
        pref.block_size_max = max;
        const auto d = ublk::map_export(pref, {});
        CHECK(d.params.basic.physical_bs_shift == 12);
        CHECK((1u << d.params.basic.io_opt_shift) <= d.max_request_bytes);
    }
    // A maximum that is not a power of two: requests of whole blocks below it.
    auto odd_max = export_with(0);
    odd_max.block_size_advertised = true;
    odd_max.block_size_min = 512;
    odd_max.block_size_preferred = 4096;
    odd_max.block_size_max = 100000;
    CHECK(ublk::map_export(odd_max, {}).max_request_bytes == 99840);
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
