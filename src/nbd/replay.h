// Replaying the durability log on a fresh connection, before the queues get
// it: every acknowledged-but-unflushed write, in acknowledgement order, then
// a FLUSH. Blocking I/O on the reconnect thread (never a queue thread),
// bounded by `timeout` per send/receive; requests are pipelined in windows
// so neither side's socket buffer can deadlock the other, and a request that
// overlaps one still in the window waits for it (servers may reorder).
#pragma once

#include <chrono>
#include <vector>

#include "nbd/durability_log.h"
#include "nbd/export_info.h"

namespace unbd::nbd {

struct ReplayResult {
    std::size_t commands = 0;  // NBD commands sent (entries split at the server's maximum)
    uint64_t bytes = 0;        // WRITE payload replayed
};

// Throws unbd::Error when the server refuses a command, the connection
// fails, or the timeout passes; the caller drops the connection then.
ReplayResult replay_log(int socket_fd, const DurabilityLog& log, const std::vector<DurabilityLog::Entry>& entries,
                        const ExportInfo& info, std::chrono::milliseconds timeout);

}  // namespace unbd::nbd
