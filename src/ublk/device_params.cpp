#include "ublk/device_params.h"

#include <algorithm>
#include <bit>

#include "common/error.h"

namespace unbd::ublk {

namespace P = proto::ublk;

namespace {

// A block device's logical block may not exceed the page size the kernel
// checks against (ublk_validate_params: logical_bs_shift <= PAGE_SHIFT).
constexpr uint32_t kMaxLogicalBlock = 4096;

uint8_t shift_of(uint32_t power_of_two) { return static_cast<uint8_t>(std::countr_zero(power_of_two)); }

uint32_t round_down_pow2(uint32_t v) { return v == 0 ? 0 : std::bit_floor(v); }

}  // namespace

CommandSupport command_support(const nbd::ExportInfo& info, bool force_read_only) {
    CommandSupport c;
    c.write = !(info.read_only() || force_read_only);
    c.flush = c.write && info.can_flush();
    c.fua = c.flush && info.can_fua();
    c.trim = c.write && info.can_trim();
    c.write_zeroes = c.write && info.can_write_zeroes();
    return c;
}

DeviceParams map_export(const nbd::ExportInfo& info, const MappingOptions& options) {
    DeviceParams out;
    const uint32_t server_min = info.block_size_advertised ? info.block_size_min : 1;
    if (!std::has_single_bit(server_min)) {
        throw Error("the server's minimum block size " + std::to_string(server_min) +
                    " is not a power of two");
    }
    const uint32_t logical = std::max<uint32_t>(512, server_min);
    if (logical > kMaxLogicalBlock) {
        throw Error("the server's minimum block size " + std::to_string(logical) +
                    " is larger than the " + std::to_string(kMaxLogicalBlock) +
                    " bytes a Linux block device can use");
    }
    out.logical_block_size = logical;

    out.size_bytes = info.size / logical * logical;
    if (out.size_bytes != info.size) {
        out.warnings.push_back("export size " + std::to_string(info.size) +
                               " is not a multiple of the " + std::to_string(logical) +
                               "-byte block size; the device uses the first " +
                               std::to_string(out.size_bytes) + " bytes");
    }
    if (out.size_bytes == 0) {
        throw Error("the export (" + std::to_string(info.size) + " bytes) is smaller than one " +
                    std::to_string(logical) + "-byte block: there is nothing to attach");
    }

    // Preferred size: a power of two by the spec; be lenient with servers.
    uint32_t preferred = info.block_size_advertised ? info.block_size_preferred
                                                    : proto::kDefaultPreferredBlockSize;
    preferred = std::max(round_down_pow2(preferred), logical);
    const uint32_t physical = std::min(preferred, kMaxLogicalBlock);

    // Largest request: the server's maximum payload and our buffer, whole blocks.
    const uint32_t server_max = info.block_size_advertised ? info.block_size_max
                                                           : proto::kDefaultMaxPayload;
    uint32_t max_bytes = std::min(server_max, options.max_io_buf_bytes);
    max_bytes = max_bytes / logical * logical;
    if (max_bytes < logical) {
        throw Error("the server's maximum request size " + std::to_string(server_max) +
                    " is smaller than its block size " + std::to_string(logical));
    }
    out.max_request_bytes = max_bytes / 512 * 512;
    const uint32_t io_opt = std::min(preferred, round_down_pow2(out.max_request_bytes));

    const CommandSupport cmds = command_support(info, options.force_read_only);
    out.read_only = !cmds.write;

    P::ublk_params& p = out.params;
    p.len = sizeof(P::ublk_params);
    p.types = P::UBLK_PARAM_TYPE_BASIC;
    P::ublk_param_basic& b = p.basic;
    b.logical_bs_shift = shift_of(logical);
    b.physical_bs_shift = shift_of(physical);
    b.io_min_shift = shift_of(physical);
    b.io_opt_shift = shift_of(std::max(io_opt, physical));
    b.max_sectors = out.max_request_bytes >> 9;
    b.dev_sectors = out.size_bytes >> 9;
    if (out.read_only) b.attrs |= P::UBLK_ATTR_READ_ONLY;
    if (info.rotational()) b.attrs |= P::UBLK_ATTR_ROTATIONAL;
    if (cmds.flush) b.attrs |= P::UBLK_ATTR_VOLATILE_CACHE;
    if (cmds.fua) b.attrs |= P::UBLK_ATTR_FUA;

    if (cmds.trim || cmds.write_zeroes) {
        // One request carries at most a 32-bit byte length (NBD and blk-mq).
        const uint32_t max_len_sectors = (UINT32_MAX / logical * logical) >> 9;
        p.types |= P::UBLK_PARAM_TYPE_DISCARD;
        P::ublk_param_discard& d = p.discard;
        d.discard_granularity = logical;
        d.max_discard_segments = 1;
        d.max_discard_sectors = cmds.trim ? max_len_sectors : 0;
        d.max_write_zeroes_sectors = cmds.write_zeroes ? max_len_sectors : 0;
    }
    return out;
}

std::string recovery_mismatch(const P::ublk_params& device, const DeviceParams& now) {
    const P::ublk_param_basic& d = device.basic;
    const P::ublk_param_basic& n = now.params.basic;
    if (n.dev_sectors < d.dev_sectors)
        return "the export (" + std::to_string(n.dev_sectors << 9) + " bytes) is smaller than the device (" +
               std::to_string(d.dev_sectors << 9) + " bytes)";
    if (n.logical_bs_shift != d.logical_bs_shift)
        return "the export's block size is " + std::to_string(1u << n.logical_bs_shift) + ", the device's " +
               std::to_string(1u << d.logical_bs_shift);
    if (n.max_sectors < d.max_sectors) return "the server's maximum request is smaller than the device's";
    // Read-only first: it also takes FLUSH and FUA away, but is the cause.
    if ((n.attrs & P::UBLK_ATTR_READ_ONLY) && !(d.attrs & P::UBLK_ATTR_READ_ONLY)) return "the export is read-only now";
    const struct {
        uint32_t attr;
        const char* lost;
    } attrs[] = {{P::UBLK_ATTR_VOLATILE_CACHE, "FLUSH"}, {P::UBLK_ATTR_FUA, "FUA"}};
    for (const auto& a : attrs)
        if ((d.attrs & a.attr) && !(n.attrs & a.attr)) return std::string("the server no longer offers ") + a.lost;
    const bool had_discard = device.types & P::UBLK_PARAM_TYPE_DISCARD;
    const bool has_discard = now.params.types & P::UBLK_PARAM_TYPE_DISCARD;
    if (had_discard && device.discard.max_discard_sectors > 0 &&
        (!has_discard || now.params.discard.max_discard_sectors == 0))
        return "the server no longer offers TRIM";
    if (had_discard && device.discard.max_write_zeroes_sectors > 0 &&
        (!has_discard || now.params.discard.max_write_zeroes_sectors == 0))
        return "the server no longer offers WRITE_ZEROES";
    return {};
}

}  // namespace unbd::ublk
