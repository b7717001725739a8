#include "daemon/resize.h"

namespace unbd::daemon {

ResizeDecision decide_resize(uint64_t device_bytes, uint64_t export_bytes, uint32_t logical_block,
                             bool allow_shrink) {
    ResizeDecision d;
    const uint64_t block = logical_block == 0 ? 512 : logical_block;
    const uint64_t fits = export_bytes / block * block;  // the device ends on a block
    const auto bytes = [](uint64_t n) { return std::to_string(n) + " bytes"; };
    if (fits == device_bytes) {
        d.message = "the export is still " + bytes(device_bytes) + ": nothing to do";
        return d;
    }
    if (fits == 0) {
        d.action = ResizeDecision::Action::Refuse;
        d.message = "the export is now smaller than one block (" + bytes(export_bytes) + "): refusing";
        return d;
    }
    d.new_bytes = fits;
    if (fits > device_bytes) {
        d.action = ResizeDecision::Action::Grow;
        d.message = "grew from " + bytes(device_bytes) + " to " + bytes(fits);
    } else if (allow_shrink) {
        d.action = ResizeDecision::Action::Shrink;
        d.message = "shrank from " + bytes(device_bytes) + " to " + bytes(fits) + " (--allow-shrink)";
    } else {
        d.action = ResizeDecision::Action::Refuse;
        d.message = "the export shrank from " + bytes(device_bytes) + " to " + bytes(fits) +
                    ": refusing, data beyond the new end would vanish under a filesystem (--allow-shrink forces it)";
    }
    return d;
}

}  // namespace unbd::daemon
