// Comparing what a new connection's handshake says with what the device was
// made from, before requests are replayed on it. Pure; unit-tested.
#pragma once

#include <string>

#include "nbd/export_info.h"

namespace unbd::nbd {

struct ExportChange {
    // Empty: safe to go on. Otherwise one line saying what changed and why
    // that makes replay unsafe ("the export shrank from 64 MiB to 32 MiB").
    std::string unsafe;
    // Safe changes worth a log line (the export grew: the device keeps its
    // size until it is resized).
    std::string note;
};

// `multi_conn_needed`: the device runs several connections, so losing
// CAN_MULTI_CONN would break FLUSH semantics across them.
ExportChange compare_exports(const ExportInfo& before, const ExportInfo& now, bool multi_conn_needed);

}  // namespace unbd::nbd
