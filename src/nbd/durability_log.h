// DurabilityLog: the writes a server acknowledged that no FLUSH has covered
// yet, kept so that a server that restarts and forgets its volatile cache
// gets them again (the NBD spec's FLUSH covers only writes already replied
// to; a new connection's FLUSH says nothing about what the old process lost).
//
// Scope: one log per device, shared by its queues (connections). Several
// connections exist only with CAN_MULTI_CONN, where a FLUSH on any
// connection covers every write acknowledged on all of them before it was
// sent: so a device-wide sequence number orders acknowledgements, a FLUSH
// remembers the sequence at the moment it is sent (flush_mark()), and its
// success drops every entry below that mark. Replay goes over one
// connection, in acknowledgement order, so overlapping writes from
// different queues end in the order the server first applied them.
//
// Storage: WRITE data lives in a memfd arena of `capacity` bytes (a ring),
// also mapped here. A write's data gets in by memcpy where the frontend's
// buffer is ours (copy mode: measured 0.63x -> see DESIGN), or by an
// io_uring WRITE_FIXED from the request's registered buffer into the memfd,
// a kernel-side copy that works for ublk's auto-registered zero-copy pages. TRIM and WRITE_ZEROES keep only
// their range. The arena and the entry count are bounded: reserve() says
// "full" and the caller sends a FLUSH of its own and waits.
//
// Modes: Replay keeps data; FailFlush only tracks whether unflushed
// acknowledged writes exist (after a reconnect the next FLUSH then fails);
// TrustServer needs no log at all (no object is made).
//
// Thread-safety: every method locks; called from the queue threads and the
// reconnect thread. Nothing here does I/O but the memfd itself.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "nbd/block_request.h"

namespace unbd::nbd {

enum class Durability : uint8_t { Replay, FailFlush, TrustServer };
const char* name(Durability mode);
std::optional<Durability> parse_durability(std::string_view text);

class DurabilityLog {
public:
    struct Reservation {
        uint64_t id = 0;           // 0: none
        uint64_t file_offset = 0;  // where the data goes in data_fd()
        uint32_t length = 0;       // bytes of data (0 for TRIM / WRITE_ZEROES)
    };
    struct Entry {
        uint64_t seq = 0;
        BlockOp op = BlockOp::Write;
        uint64_t offset = 0;  // on the export
        uint32_t length = 0;
        bool no_hole = false;
        uint64_t file_offset = 0;  // WRITE: its data in data_fd()
    };
    struct Stats {
        std::size_t entries = 0;       // acknowledged, not yet covered by a FLUSH
        uint64_t bytes = 0;            // arena bytes in use (reserved or logged)
        uint64_t logged_total = 0;     // writes ever logged
        uint64_t full_events = 0;      // reserve() found the log full
    };

    // Throws unbd::Error when the memfd cannot be made.
    DurabilityLog(Durability mode, uint64_t capacity_bytes);
    DurabilityLog(const DurabilityLog&) = delete;
    DurabilityLog& operator=(const DurabilityLog&) = delete;

    Durability mode() const noexcept { return mode_; }
    uint64_t capacity() const noexcept { return capacity_; }
    int data_fd() const noexcept { return memfd_.get(); }  // -1 unless Replay
    // Where a reservation's data goes, in this process's mapping of the arena.
    std::byte* data(const Reservation& r) const noexcept { return base_ + r.file_offset; }
    ~DurabilityLog();

    // Room for one request about to be sent (data_bytes: WRITE length, 0
    // otherwise). nullopt: full, flush and try again. Replay mode only.
    std::optional<Reservation> reserve(uint32_t data_bytes);
    // The request failed, or needs no log (FUA): give the room back.
    void release(const Reservation& r);
    // The server acknowledged the request: it now waits for a FLUSH.
    void acknowledged(const Reservation& r, const BlockRequest& request);

    // The sequence a FLUSH carries from the moment it is sent; pass it to
    // flushed() when that FLUSH succeeds.
    uint64_t flush_mark();
    void flushed(uint64_t mark);
    bool has_unflushed();

    // The reconnect thread, while no connection is up: what to replay, in
    // acknowledgement order, and the mark that replaying them reaches.
    std::vector<Entry> unflushed(uint64_t* mark);
    // Reads a WRITE entry's data (pread of the memfd). Throws on failure.
    void read_data(const Entry& e, std::byte* out) const;

    // FailFlush: a reconnect lost unflushed writes; the next FLUSH must fail.
    void poison_next_flush();
    bool take_flush_poison();

    Stats stats();

private:
    struct Block {
        uint64_t id = 0;
        uint64_t offset = 0;
        uint64_t length = 0;
        bool freed = false;
    };
    void free_block(uint64_t id);  // locked
    void drop_covered(uint64_t mark);  // locked

    const Durability mode_;
    const uint64_t capacity_;
    const std::size_t max_entries_;
    Fd memfd_;
    std::byte* base_ = nullptr;  // the arena, mapped MAP_SHARED
    std::mutex mutex_;
    std::deque<Block> blocks_;  // arena allocations, oldest first
    uint64_t head_ = 0;         // next free byte of the arena ring
    uint64_t next_id_ = 1;
    std::size_t reserved_ = 0;  // reservations not yet acknowledged or released
    std::deque<Entry> entries_;  // acknowledged, by seq
    std::deque<uint64_t> entry_blocks_;  // block id of each entry (0: none)
    uint64_t next_seq_ = 1;
    uint64_t last_ack_seq_ = 0;   // FailFlush: the newest acknowledgement
    uint64_t covered_mark_ = 0;   // every seq below this is flushed
    bool flush_poisoned_ = false;
    Stats stats_;
};

}  // namespace unbd::nbd
