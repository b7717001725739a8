#include "nbd/export_compat.h"

namespace unbd::nbd {

namespace {
std::string bytes_text(uint64_t n) {
    if (n % (1ull << 30) == 0 && n > 0) return std::to_string(n >> 30) + " GiB";
    if (n % (1ull << 20) == 0 && n > 0) return std::to_string(n >> 20) + " MiB";
    return std::to_string(n) + " bytes";
}
}  // namespace

ExportChange compare_exports(const ExportInfo& before, const ExportInfo& now, bool multi_conn_needed) {
    ExportChange c;
    const auto unsafe = [&](const std::string& why) {
        if (c.unsafe.empty()) c.unsafe = why;
    };
    if (now.size < before.size)
        unsafe("the export shrank from " + bytes_text(before.size) + " to " + bytes_text(now.size));
    if (now.read_only() && !before.read_only()) unsafe("the export is read-only now");
    const struct {
        bool had, has;
        const char* what;
    } lost[] = {
        {before.can_flush(), now.can_flush(), "FLUSH"},
        {before.can_fua(), now.can_fua(), "FUA"},
        {before.can_trim(), now.can_trim(), "TRIM"},
        {before.can_write_zeroes(), now.can_write_zeroes(), "WRITE_ZEROES"},
        {before.can_multi_conn() && multi_conn_needed, now.can_multi_conn(), "multi-conn"},
    };
    for (const auto& l : lost)
        if (l.had && !l.has) unsafe(std::string("the server no longer offers ") + l.what);
    if (now.block_size_min > before.block_size_min)
        unsafe("the minimum block size grew from " + std::to_string(before.block_size_min) + " to " +
               std::to_string(now.block_size_min));
    if (now.block_size_max < before.block_size_max)
        unsafe("the maximum payload shrank from " + std::to_string(before.block_size_max) + " to " +
               std::to_string(now.block_size_max));
    if (now.size > before.size)
        c.note = "the export grew from " + bytes_text(before.size) + " to " + bytes_text(now.size) +
                 "; the device keeps its size";
    return c;
}

}  // namespace unbd::nbd
