#include "nbd/synthetic_frontend.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/error.h"

namespace unbd::nbd {

void SyntheticFrontend::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

SyntheticFrontend::SyntheticFrontend(Fd socket, const ExportInfo& info, const SyntheticOptions& options)
    : SyntheticFrontend(Connection{std::move(socket), info, nullptr}, options) {}

SyntheticFrontend::SyntheticFrontend(Connection connection, const SyntheticOptions& options)
    : options_(options), batcher_(false) {
    if (options_.queue_depth == 0) throw Error("synthetic frontend: queue depth must be at least 1");
    // Room for one full chain, the reader, and the owner's slack.
    unsigned entries = 64;
    while (entries < options_.max_chain_sqes + 8u) entries *= 2;
    ring_ = std::make_unique<uring::Ring>(uring::RingOptions{
        .entries = entries, .cq_entries = entries * 4, .fast_taskrun = options_.fast_taskrun});
    batcher_ = uring::WakeBatcher(options_.batch_wakeups && ring_->has_min_wait());

    const std::size_t page = 4096;
    const std::size_t per_tag = (std::size_t{options_.buffer_bytes} + page - 1) / page * page;
    const std::size_t total = per_tag * options_.queue_depth;
    memory_.reset(static_cast<std::byte*>(std::aligned_alloc(page, total)));
    if (!memory_) throw Error("synthetic frontend: cannot allocate " + std::to_string(total) + " bytes of buffers");
    std::memset(memory_.get(), 0, total);

    buffers_ = std::make_unique<uring::BufferTable>(*ring_, options_.queue_depth);
    for (uint16_t t = 0; t < options_.queue_depth; ++t)
        check_errno(buffers_->set(t, memory_.get() + per_tag * t, per_tag), "cannot register a tag buffer");

    ReconnectOptions ro = options_.reconnect;
    if (options_.fixed_file) {
        files_ = std::make_unique<uring::FileTable>(*ring_, 1);
        ro.bind_socket = [this](int fd) {
            check_errno(files_->set(0, fd), "cannot register the socket with io_uring");
            return uring::Target::registered(0);
        };
    }

    SessionOptions so;
    so.queue_depth = options_.queue_depth;
    so.max_request_bytes = options_.buffer_bytes;
    so.buffer_kind = BufferKind::UserAddress;
    std::byte* base = memory_.get();
    so.buffer_base = [base, per_tag](uint16_t tag) {
        return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(base + per_tag * tag));
    };
    so.payload_ops = options_.payload_ops;
    so.max_chain_sqes = options_.max_chain_sqes;
    so.stepwise_sends = options_.stepwise_sends;
    so.on_complete = [this](uint16_t tag, int result) {
        --in_flight_;
        ++completed_since_wake_;
        if (on_complete_) on_complete_(tag, result);
    };
    link_ = std::make_unique<ReconnectingSession>(*ring_, std::move(connection), std::move(so),
                                                  std::move(ro));
}

SyntheticFrontend::~SyntheticFrontend() {
    if (!link_) return;
    if (!link_->idle()) {
        if (link_->session()) link_->session()->fail("synthetic frontend: shutting down");
        for (int i = 0; i < 500 && !link_->idle(); ++i) step(std::chrono::milliseconds(10));
    }
    if (!link_->idle()) {
        // Buffers the kernel may still touch must outlive it: leak them
        // rather than free memory under an in-flight SQE.
        link_.release();
        memory_.release();
    }
}

std::span<std::byte> SyntheticFrontend::buffer(uint16_t tag) {
    const std::size_t per_tag = (std::size_t{options_.buffer_bytes} + 4095) / 4096 * 4096;
    return {memory_.get() + per_tag * tag, options_.buffer_bytes};
}

void SyntheticFrontend::step(std::chrono::microseconds timeout) {
    link_->prepare_sqes();
    batcher_.submit_and_wait(*ring_, in_flight_, link_->receive_backlogged(), timeout.count(),
                             link_->send_cqes_to_come());
    ring_->drain_cqes([&](const io_uring_cqe& cqe) { link_->handle_cqe(cqe); });
    batcher_.on_wake(uring::WakeBatcher::clock_ns(), completed_since_wake_);
    completed_since_wake_ = 0;
    // A failure's completions (held requests failing, -EIO) come here.
    link_->prepare_sqes();
}

bool SyntheticFrontend::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        step(std::chrono::milliseconds(20));
    }
    return true;
}

bool SyntheticFrontend::run_batch(std::size_t count, const std::function<BlockRequest(std::size_t, uint16_t)>& make,
                                  const std::function<void(std::size_t, uint16_t, int)>& done,
                                  std::chrono::milliseconds timeout) {
    std::vector<std::size_t> index_of(options_.queue_depth);
    std::vector<uint16_t> free_tags;
    for (uint16_t t = options_.queue_depth; t-- > 0;) free_tags.push_back(t);
    std::size_t next = 0, finished = 0;
    auto saved = std::move(on_complete_);
    on_complete_ = [&](uint16_t tag, int result) {
        done(index_of[tag], tag, result);
        ++finished;
        free_tags.push_back(tag);
    };
    const bool ok = run_until(
        [&] {
            while (next < count && !free_tags.empty()) {
                const uint16_t tag = free_tags.back();
                free_tags.pop_back();
                BlockRequest r = make(next, tag);
                r.tag = tag;
                index_of[tag] = next++;
                submit(r);
            }
            return finished == count;
        },
        timeout);
    on_complete_ = std::move(saved);
    return ok;
}

int SyntheticFrontend::execute(BlockRequest r, std::chrono::milliseconds timeout) {
    int result = -ETIMEDOUT;
    run_batch(1, [&](std::size_t, uint16_t) { return r; },
              [&](std::size_t, uint16_t, int res) { result = res; }, timeout);
    return result;
}

bool SyntheticFrontend::disconnect(std::chrono::milliseconds timeout) {
    link_->disconnect();
    return run_until([&] { return link_->session() && link_->session()->disconnected() && link_->idle(); }, timeout);
}

}  // namespace unbd::nbd
