#include "uring/registered.h"

#include <sys/uio.h>

#include "common/error.h"

namespace unbd::uring {

BufferTable::BufferTable(Ring& ring, unsigned count) : ring_(ring), count_(count) {
    check_errno(io_uring_register_buffers_sparse(ring_.raw(), count), "cannot register io_uring buffer table");
}

BufferTable::~BufferTable() { io_uring_unregister_buffers(ring_.raw()); }

int BufferTable::set(unsigned index, void* base, std::size_t len) noexcept {
    iovec iov{base, len};
    __u64 tag = 0;
    int ret = io_uring_register_buffers_update_tag(ring_.raw(), index, &iov, &tag, 1);
    return ret < 0 ? ret : 0;
}

int BufferTable::clear(unsigned index) noexcept {
    iovec iov{nullptr, 0};
    __u64 tag = 0;
    int ret = io_uring_register_buffers_update_tag(ring_.raw(), index, &iov, &tag, 1);
    return ret < 0 ? ret : 0;
}

FileTable::FileTable(Ring& ring, unsigned count) : ring_(ring), count_(count) {
    check_errno(io_uring_register_files_sparse(ring_.raw(), count), "cannot register io_uring file table");
}

FileTable::~FileTable() { io_uring_unregister_files(ring_.raw()); }

int FileTable::set(unsigned index, int fd) noexcept {
    int ret = io_uring_register_files_update(ring_.raw(), index, &fd, 1);
    return ret < 0 ? ret : 0;
}

int FileTable::clear(unsigned index) noexcept {
    int fd = -1;
    int ret = io_uring_register_files_update(ring_.raw(), index, &fd, 1);
    return ret < 0 ? ret : 0;
}

}  // namespace unbd::uring
