// ublk-features-check: asks the running kernel, through unbd's own control
// device code (ControlDevice = proto/ublk_uapi.h + an SQE128 uring::Ring),
// which ublk features it has.
//
//   ublk-features-check              prints them; fails unless zero copy and
//                                    automatic buffer registration are both
//                                    there (tests/vm/cases/ublk-features.sh)
//   ublk-features-check --has NAME.. status 0 when the kernel has every NAME
//                                    (as printed: AUTO_BUF_REG, UPDATE_SIZE,
//                                    ...), 1 when not (the missing ones on
//                                    stdout), 2 on an unknown name or when
//                                    the kernel cannot be asked. The VM
//                                    cases' kernel_has (tests/vm/lib.sh).
// On a kernel without ublk both fail.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string_view>

#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"

namespace pu = unbd::proto::ublk;

int main(int argc, char** argv) {
    const bool query = argc > 1 && std::string_view(argv[1]) == "--has";
    uint64_t required = pu::UBLK_F_SUPPORT_ZERO_COPY | pu::UBLK_F_AUTO_BUF_REG;
    if (query) {
        required = 0;
        for (int i = 2; i < argc; ++i) {
            unsigned bit = 0;
            while (bit < pu::kFeatureNames.size() && pu::kFeatureNames[bit] != argv[i]) ++bit;
            if (bit == pu::kFeatureNames.size()) {
                std::fprintf(stderr, "ublk-features-check: unknown feature %s\n", argv[i]);
                return 2;
            }
            required |= 1ull << bit;
        }
    }
    uint64_t features = 0;
    try {
        unbd::ublk::ControlDevice control;
        features = control.features();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ublk-features-check: %s\n", e.what());
        return query ? 2 : 1;
    }
    const uint64_t missing = required & ~features;
    if (query) {
        if (missing != 0) std::printf("%s\n", pu::feature_names(missing).c_str());
        return missing != 0 ? 1 : 0;
    }
    std::printf("ublk features 0x%llx: %s\n", static_cast<unsigned long long>(features),
                pu::feature_names(features).c_str());
    if (missing != 0) {
        std::printf("ublk-features-check: FAIL, missing %s\n", pu::feature_names(missing).c_str());
        return 1;
    }
    std::printf("ublk-features-check: ok, %s present\n", pu::feature_names(required).c_str());
    return 0;
}
