// ublk-features-check: asks the running kernel, through unbd's own control
// device code (ControlDevice = proto/ublk_uapi.h + an SQE128 uring::Ring),
// which ublk features it has, prints them, and fails unless zero copy and
// automatic buffer registration are both there. Run in the test VM by
// tests/vm/cases/ublk-features.sh; on a kernel without ublk it fails.
#include <cstdint>
#include <cstdio>
#include <exception>

#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"

namespace pu = unbd::proto::ublk;

int main() {
    constexpr uint64_t required = pu::UBLK_F_SUPPORT_ZERO_COPY | pu::UBLK_F_AUTO_BUF_REG;
    uint64_t features = 0;
    try {
        unbd::ublk::ControlDevice control;
        features = control.features();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ublk-features-check: %s\n", e.what());
        return 1;
    }
    std::printf("ublk features 0x%llx: %s\n", static_cast<unsigned long long>(features),
                pu::feature_names(features).c_str());
    const uint64_t missing = required & ~features;
    if (missing != 0) {
        std::printf("ublk-features-check: FAIL, missing %s\n", pu::feature_names(missing).c_str());
        return 1;
    }
    std::printf("ublk-features-check: ok, %s present\n", pu::feature_names(required).c_str());
    return 0;
}
