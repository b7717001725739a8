#include "nbd/durability_log.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/error.h"

namespace unbd::nbd {

const char* name(Durability mode) {
    switch (mode) {
        case Durability::Replay: return "replay";
        case Durability::FailFlush: return "fail-flush";
        case Durability::TrustServer: return "trust-server";
    }
    return "?";
}

std::optional<Durability> parse_durability(std::string_view text) {
    for (Durability d : {Durability::Replay, Durability::FailFlush, Durability::TrustServer})
        if (text == name(d)) return d;
    return std::nullopt;
}

DurabilityLog::DurabilityLog(Durability mode, uint64_t capacity_bytes)
    : mode_(mode),
      capacity_(mode == Durability::Replay ? capacity_bytes : 0),
      // A TRIM or WRITE_ZEROES keeps ~64 bytes of bookkeeping: bound their
      // count as if each held a 4 KiB block, so memory stays near capacity.
      max_entries_(std::max<std::size_t>(1024, capacity_bytes / 4096)) {
    if (mode_ != Durability::Replay) return;
    memfd_.reset(::memfd_create("unbd-durability-log", MFD_CLOEXEC));
    if (!memfd_) throw Error(errno_text("cannot create the durability log (memfd)", errno), errno);
    if (::ftruncate(memfd_.get(), static_cast<off_t>(capacity_)) != 0)
        throw Error(errno_text("cannot size the durability log to " + std::to_string(capacity_) + " bytes", errno),
                    errno);
    void* p = ::mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
    if (p == MAP_FAILED) throw Error(errno_text("cannot map the durability log", errno), errno);
    base_ = static_cast<std::byte*>(p);
}

DurabilityLog::~DurabilityLog() {
    if (base_ != nullptr) ::munmap(base_, capacity_);
}

std::optional<DurabilityLog::Reservation> DurabilityLog::reserve(uint32_t data_bytes) {
    std::lock_guard lock(mutex_);
    if (entries_.size() + reserved_ >= max_entries_ || data_bytes > capacity_) {
        ++stats_.full_events;
        return std::nullopt;
    }
    Reservation r{next_id_++, 0, data_bytes};
    if (data_bytes > 0) {
        // The arena is a ring: live blocks run from the oldest (tail) to head_.
        if (blocks_.empty()) head_ = 0;
        const uint64_t tail = blocks_.empty() ? 0 : blocks_.front().offset;
        const bool wrapped = !blocks_.empty() && head_ <= tail;
        uint64_t at;
        if (!wrapped && head_ + data_bytes <= capacity_) at = head_;
        else if (!wrapped && data_bytes <= tail) at = 0;
        else if (wrapped && head_ + data_bytes <= tail) at = head_;
        else {
            ++stats_.full_events;
            return std::nullopt;
        }
        blocks_.push_back(Block{r.id, at, data_bytes, false});
        head_ = at + data_bytes;
        r.file_offset = at;
        stats_.bytes += data_bytes;
    }
    ++reserved_;
    return r;
}

void DurabilityLog::free_block(uint64_t id) {
    auto it = std::lower_bound(blocks_.begin(), blocks_.end(), id,
                               [](const Block& b, uint64_t v) { return b.id < v; });
    if (it == blocks_.end() || it->id != id || it->freed) return;
    it->freed = true;
    stats_.bytes -= it->length;
    while (!blocks_.empty() && blocks_.front().freed) blocks_.pop_front();
    // The newest blocks freed (failed writes): their room is reused at once.
    while (!blocks_.empty() && blocks_.back().freed) blocks_.pop_back();
    head_ = blocks_.empty() ? 0 : blocks_.back().offset + blocks_.back().length;
}

void DurabilityLog::release(const Reservation& r) {
    std::lock_guard lock(mutex_);
    if (r.id == 0) return;
    if (reserved_ > 0) --reserved_;
    if (r.length > 0) free_block(r.id);
}

void DurabilityLog::acknowledged(const Reservation& r, const BlockRequest& request) {
    std::lock_guard lock(mutex_);
    const uint64_t seq = next_seq_++;
    last_ack_seq_ = seq;
    ++stats_.logged_total;
    if (mode_ != Durability::Replay) return;
    if (reserved_ > 0) --reserved_;
    entries_.push_back(Entry{seq, request.op, request.offset, request.length, request.no_hole, r.file_offset});
    entry_blocks_.push_back(r.length > 0 ? r.id : 0);
}

uint64_t DurabilityLog::flush_mark() {
    std::lock_guard lock(mutex_);
    return next_seq_;
}

void DurabilityLog::drop_covered(uint64_t mark) {
    covered_mark_ = std::max(covered_mark_, mark);
    while (!entries_.empty() && entries_.front().seq < mark) {
        if (entry_blocks_.front() != 0) free_block(entry_blocks_.front());
        entries_.pop_front();
        entry_blocks_.pop_front();
    }
}

void DurabilityLog::flushed(uint64_t mark) {
    std::lock_guard lock(mutex_);
    drop_covered(mark);
}

bool DurabilityLog::has_unflushed() {
    std::lock_guard lock(mutex_);
    return last_ack_seq_ >= covered_mark_ && last_ack_seq_ != 0;
}

std::vector<DurabilityLog::Entry> DurabilityLog::unflushed(uint64_t* mark) {
    std::lock_guard lock(mutex_);
    *mark = next_seq_;
    return {entries_.begin(), entries_.end()};
}

void DurabilityLog::read_data(const Entry& e, std::byte* out) const {
    std::size_t done = 0;
    while (done < e.length) {
        const ssize_t n = ::pread(memfd_.get(), out + done, e.length - done, static_cast<off_t>(e.file_offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(errno_text("cannot read the durability log", n < 0 ? errno : EIO), EIO);
        done += static_cast<std::size_t>(n);
    }
}

void DurabilityLog::poison_next_flush() {
    std::lock_guard lock(mutex_);
    flush_poisoned_ = true;
}

bool DurabilityLog::take_flush_poison() {
    std::lock_guard lock(mutex_);
    return std::exchange(flush_poisoned_, false);
}

DurabilityLog::Stats DurabilityLog::stats() {
    std::lock_guard lock(mutex_);
    Stats s = stats_;
    s.entries = entries_.size();
    return s;
}

}  // namespace unbd::nbd
