// Mapping: a move-only owner of one mmap (the queue's I/O descriptor
// array, the copy-mode buffers).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <string>
#include <utility>

#include "common/error.h"

namespace unbd::ublk {

class Mapping {
public:
    Mapping() = default;
    // Throws Error("what: strerror") when mmap fails.
    Mapping(std::size_t length, int prot, int flags, int fd, off_t offset, const std::string& what)
        : length_(length) {
        void* p = ::mmap(nullptr, length, prot, flags, fd, offset);
        if (p == MAP_FAILED) throw Error(errno_text(what, errno), errno);
        addr_ = p;
    }
    Mapping(Mapping&& o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), length_(std::exchange(o.length_, 0)) {}
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            length_ = std::exchange(o.length_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    void* get() const noexcept { return addr_; }
    std::size_t size() const noexcept { return length_; }
    void reset() noexcept {
        if (addr_ != nullptr) ::munmap(addr_, length_);
        addr_ = nullptr;
        length_ = 0;
    }

private:
    void* addr_ = nullptr;
    std::size_t length_ = 0;
};

}  // namespace unbd::ublk
