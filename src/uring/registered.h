// Registered resources of one Ring: a sparse buffer table (payload buffer
// index == ublk tag) and a sparse file table. Both are RAII: they
// unregister when destroyed, so they must die before their Ring.
//
// Kernel-registered buffers (ublk UBLK_F_AUTO_BUF_REG) land in the same
// table at the tag's index; a BufferTable made with `sparse(n)` leaves
// every slot empty for the kernel (or `set` below) to fill.
#pragma once

#include <cstddef>
#include <cstdint>

#include "uring/ring.h"

namespace unbd::uring {

class BufferTable {
public:
    // Registers `count` empty slots. Throws unbd::Error on failure.
    BufferTable(Ring& ring, unsigned count);
    ~BufferTable();
    BufferTable(const BufferTable&) = delete;
    BufferTable& operator=(const BufferTable&) = delete;

    unsigned size() const noexcept { return count_; }
    // Puts a user buffer at `index` (replacing whatever was there). -errno.
    int set(unsigned index, void* base, std::size_t len) noexcept;
    // Empties slot `index`. -errno.
    int clear(unsigned index) noexcept;

private:
    Ring& ring_;
    unsigned count_;
};

class FileTable {
public:
    FileTable(Ring& ring, unsigned count);
    ~FileTable();
    FileTable(const FileTable&) = delete;
    FileTable& operator=(const FileTable&) = delete;

    unsigned size() const noexcept { return count_; }
    // Registers `fd` at `index`; the table holds its own reference, so the
    // caller may close fd afterwards. -errno.
    int set(unsigned index, int fd) noexcept;
    int clear(unsigned index) noexcept;

private:
    Ring& ring_;
    unsigned count_;
};

}  // namespace unbd::uring
