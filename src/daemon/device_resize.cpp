// DeviceDaemon's resize (daemon/resize.h decides; this file does): a side
// connection to learn the export's size, a renegotiation of every
// connection before growing, UPDATE_SIZE, and the outcome in the state file
// for `unbd resize`. Runs on the daemon's main thread.
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/wait.h"
#include "daemon/device_daemon.h"
#include "daemon/resize.h"
#include "proto/ublk_uapi.h"

namespace unbd::daemon {

namespace P = proto::ublk;
using namespace std::chrono_literals;

// A connection keeps the size it negotiated (servers refuse requests past
// it): before the device grows, every connection is made again, with I/O
// held meanwhile, and must see at least the new size.
void DeviceDaemon::renegotiate_for(uint64_t bytes) {
    const uint64_t before = redialer_->status().connected_times;
    redialer_->renegotiate();
    nbd::RedialStatus st;
    if (!wait_for([&] { return (st = redialer_->status()).connected_times > before; }, 60s, 20ms))
        throw Error("the connections did not come back within 60 s to learn the new size");
    handled_export_size_ = st.export_size;
    if (st.export_size < bytes)
        throw Error("the new connections see " + std::to_string(st.export_size) + " bytes, not " +
                    std::to_string(bytes));
}

void DeviceDaemon::resize(bool allow_shrink, const char* why, bool asked) {
    ResizeDecision d;
    try {
        nbd::ConnectOptions co = plan_.connect;
        co.connect_timeout = co.handshake_timeout = 10s;
        const nbd::Connection side = nbd::connect_export(plan_.uri, co);
        d = decide_resize(export_size_.load(), side.info.size, state_.logical_block_size, allow_shrink);
        if (d.action == ResizeDecision::Action::Grow || d.action == ResizeDecision::Action::Shrink) {
            if ((plan_.features & P::UBLK_F_UPDATE_SIZE) == 0)
                throw Error("this kernel cannot resize a ublk device (UBLK_F_UPDATE_SIZE, Linux 6.16 or newer)");
            if (d.action == ResizeDecision::Action::Grow && redialer_->status().export_size < d.new_bytes)
                renegotiate_for(d.new_bytes);
            // Growing: the sessions accept the new range before the kernel
            // can send it. Shrinking: the other way round.
            if (d.action == ResizeDecision::Action::Grow) export_size_ = d.new_bytes;
            control_->update_size(device_->id(), d.new_bytes >> 9);
            export_size_ = d.new_bytes;
            state_.size_bytes = d.new_bytes;
            spdlog::info("{} ({}): {}", state_.dev, why, d.message);
        } else if (d.action == ResizeDecision::Action::Refuse) {
            spdlog::warn("{} ({}): {}", state_.dev, why, d.message);
        }
    } catch (const std::exception& e) {
        export_size_ = state_.size_bytes;
        d.action = ResizeDecision::Action::Refuse;
        d.message = std::string("resize failed: ") + e.what();
        spdlog::error("{} ({}): {}", state_.dev, why, d.message);
    }
    // A check of our own that found nothing to do is not an outcome: it must
    // not overwrite the one `unbd resize` is waiting to read (the periodic
    // check may run right after the asked-for resize).
    if (!asked && d.action == ResizeDecision::Action::Keep) return;
    ++state_.resize_seq;
    state_.resize_ok = d.action != ResizeDecision::Action::Refuse;
    state_.resize_result = d.message;
    try {
        write_state(state_);
    } catch (const std::exception& e) {
        spdlog::warn("cannot update the state file: {}", e.what());
    }
}

}  // namespace unbd::daemon
