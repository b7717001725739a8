// What `attach --metrics ADDR:PORT` serves (daemon/http_endpoint.h carries
// it): /metrics in Prometheus' text format, /healthz and /readyz.
//
// The daemon takes a MetricsSnapshot on the endpoint's thread for each
// request (relaxed atomic counters of every queue, summed; health under the
// daemon's mutex); everything here is pure, so host tests compose the
// whole reply from real IoCounters without ublk.
//
//   /metrics  every sample has the labels device (the ublk id), dev and uri
//             (the export's display form: no TLS parameters, so no key file
//             paths);
//             unbd_requests_total, unbd_request_errors_total,
//             unbd_bytes_total and unbd_request_duration_seconds (histogram)
//             by op; refused requests, in-flight, queue waits (and the
//             held ones), reconnects, connection state, queues connected,
//             export size, live; unbd_device_info.
//   /healthz  200 while the daemon's main loop turns (a heartbeat at most
//             kHealthyLoopAge old), else 503.
//   /readyz   200 when the device is live and every connection is up, else
//             503 with the reason on one line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/http_endpoint.h"
#include "ublk/io_stats.h"

namespace unbd::daemon {

inline constexpr std::chrono::seconds kHealthyLoopAge{5};

struct MetricsSnapshot {
    bool live = false;  // START_DEV done, shutdown not begun
    uint32_t id = 0;
    std::string dev;
    std::string uri;   // display form
    std::string name;  // --name, may be empty
    std::string zero_copy;
    uint64_t size_bytes = 0;
    std::string connection;  // nbd::name(LinkHealth): connected / reconnecting / disconnected
    uint64_t reconnects = 0;
    // Since the main loop last went round; nullopt before it first did.
    std::optional<std::chrono::milliseconds> loop_age;
    std::vector<ublk::IoMetrics> queues;  // one per queue
};

// The /metrics body. Pure.
std::string render_metrics(const MetricsSnapshot& s);

// Why the device is not ready ("" when it is). Pure.
std::string not_ready_reason(const MetricsSnapshot& s);

// The reply to GET `path`, from a snapshot taken for it. Pure.
HttpReply metrics_reply(const std::string& path, const MetricsSnapshot& s);

}  // namespace unbd::daemon
