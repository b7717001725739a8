// ublk-foreign-device: stands in for another ublk server's device in the
// VM cases (tests/vm/cases/cli-bad-input.sh): unbd must recognise that it
// did not make it and leave it alone.
//
//   ublk-foreign-device add     ADD_DEV of a small device without unbd's
//                               mark (ublksrv_flags 0), never started;
//                               prints its id
//   ublk-foreign-device del ID  deletes it again
//   ublk-foreign-device mark ID prints its ublksrv_flags (hex)
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "proto/ublk_uapi.h"
#include "ublk/control_device.h"

namespace pu = unbd::proto::ublk;

int main(int argc, char** argv) {
    const std::string cmd = argc > 1 ? argv[1] : "";
    try {
        unbd::ublk::ControlDevice control;
        if (cmd == "add" && argc == 2) {
            unbd::ublk::DevInfo want{};
            want.nr_hw_queues = 1;
            want.queue_depth = 1;
            want.max_io_buf_bytes = 64 << 10;
            want.dev_id = pu::kDevIdAuto;
            want.flags = pu::UBLK_F_CMD_IOCTL_ENCODE;
            std::printf("%u\n", control.add(want).dev_id);
            return 0;
        }
        if ((cmd == "del" || cmd == "mark") && argc == 3) {
            const auto id = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
            if (cmd == "mark") {
                std::printf("%llx\n", static_cast<unsigned long long>(control.get_info(id).ublksrv_flags));
                return 0;
            }
            const int r = control.try_remove(id);
            if (r < 0) std::fprintf(stderr, "ublk-foreign-device: DEL_DEV %u: %d\n", id, r);
            return r < 0 ? 1 : 0;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ublk-foreign-device: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: ublk-foreign-device add | del ID | mark ID\n");
    return 2;
}
