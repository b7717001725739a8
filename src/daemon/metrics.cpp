// daemon/metrics.h: a snapshot of the daemon's counters as Prometheus text,
// and its health and readiness.
#include "daemon/metrics.h"

#include "daemon/prometheus_text.h"

namespace unbd::daemon {

namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kExpositionType = "text/plain; version=0.0.4; charset=utf-8";

// Prometheus' label values for nbd::BlockOp, in its order.
constexpr const char* kOpLabels[ublk::kOpCount] = {"read", "write", "flush", "trim", "write_zeroes"};

// Counters and histograms of every op, the queues summed.
void per_op_families(PrometheusText& t, const Labels& device, const ublk::IoMetrics& total) {
    const auto with_op = [&](std::size_t op) {
        Labels l = device;
        l.emplace_back("op", kOpLabels[op]);
        return l;
    };
    t.family("unbd_requests_total", "counter", "Requests completed (with or without an error), by operation.");
    for (std::size_t op = 0; op < ublk::kOpCount; ++op)
        t.sample("unbd_requests_total", with_op(op), total.ops[op].ok + total.ops[op].errors);
    t.family("unbd_request_errors_total", "counter", "Requests completed with an error, by operation.");
    for (std::size_t op = 0; op < ublk::kOpCount; ++op)
        t.sample("unbd_request_errors_total", with_op(op), total.ops[op].errors);
    t.family("unbd_bytes_total", "counter", "Bytes of the requests that succeeded, by operation.");
    for (std::size_t op = 0; op < ublk::kOpCount; ++op)
        t.sample("unbd_bytes_total", with_op(op), total.ops[op].bytes);

    std::vector<double> bounds;
    for (const uint64_t ns : ublk::kDurationBoundsNs) bounds.push_back(static_cast<double>(ns) / 1e9);
    t.family("unbd_request_duration_seconds", "histogram",
             "Time from the ublk request's arrival at its queue to its completion, by operation.");
    for (std::size_t op = 0; op < ublk::kOpCount; ++op) {
        const ublk::OpMetrics& m = total.ops[op];
        t.histogram("unbd_request_duration_seconds", with_op(op), bounds,
                    std::vector<uint64_t>(m.buckets.begin(), m.buckets.end()),
                    static_cast<double>(m.duration_ns) / 1e9);
    }
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& s) {
    const Labels device = {{"device", std::to_string(s.id)}, {"dev", s.dev}, {"uri", s.uri}};
    ublk::IoMetrics total;
    for (const auto& q : s.queues) total += q;

    PrometheusText t;
    t.family("unbd_device_info", "gauge", "The attached device; always 1.");
    Labels info = device;
    info.emplace_back("name", s.name);
    info.emplace_back("zero_copy", s.zero_copy);
    t.sample("unbd_device_info", info, uint64_t{1});
    t.family("unbd_device_live", "gauge", "1 while the device is live (started, not stopping).");
    t.sample("unbd_device_live", device, uint64_t{s.live ? 1u : 0u});
    t.family("unbd_export_size_bytes", "gauge", "Size of the device (the export's, rounded to the block size).");
    t.sample("unbd_export_size_bytes", device, s.size_bytes);

    per_op_families(t, device, total);
    t.family("unbd_refused_requests_total", "counter",
             "Requests failed before they reached the server (unsupported or unaligned).");
    t.sample("unbd_refused_requests_total", device, total.refused);
    t.family("unbd_requests_in_flight", "gauge", "Requests taken from the kernel and not yet completed.");
    t.sample("unbd_requests_in_flight", device, total.in_flight);
    t.family("unbd_queue_waits_total", "counter", "Times the queue threads waited for completions.");
    t.sample("unbd_queue_waits_total", device, total.waits);
    t.family("unbd_queue_held_waits_total", "counter",
             "Waits that held their wake-up to gather more replies (io_uring min_wait, Linux 6.12+).");
    t.sample("unbd_queue_held_waits_total", device, total.held_waits);

    t.family("unbd_connection_state", "gauge", "1 for the state the device's connections are in.");
    for (const char* state : {"connected", "reconnecting", "disconnected"}) {
        Labels l = device;
        l.emplace_back("state", state);
        t.sample("unbd_connection_state", l, uint64_t{s.connection == state ? 1u : 0u});
    }
    t.family("unbd_connection_up", "gauge", "1 when the queue's NBD connection is up.");
    for (std::size_t q = 0; q < s.queues.size(); ++q) {
        Labels l = device;
        l.emplace_back("queue", std::to_string(q));
        t.sample("unbd_connection_up", l, uint64_t{s.queues[q].connected});
    }
    t.family("unbd_reconnects_total", "counter", "Times the connections were made again after a loss.");
    t.sample("unbd_reconnects_total", device, s.reconnects);
    return t.text();
}

std::string not_ready_reason(const MetricsSnapshot& s) {
    if (!s.live) return s.dev.empty() ? "the device is not live yet" : s.dev + " is not live";
    if (s.connection != "connected") return s.dev + ": connections " + s.connection;
    for (std::size_t q = 0; q < s.queues.size(); ++q)
        if (s.queues[q].connected == 0) return s.dev + ": the connection of queue " + std::to_string(q) + " is down";
    return "";
}

HttpReply metrics_reply(const std::string& path, const MetricsSnapshot& s) {
    if (path == "/metrics") {
        if (s.dev.empty()) return {503, kTextType, "the device is not attached yet\n"};
        return {200, kExpositionType, render_metrics(s)};
    }
    if (path == "/healthz") {
        if (!s.loop_age) return {503, kTextType, "starting\n"};
        if (*s.loop_age > kHealthyLoopAge)
            return {503, kTextType, "the main loop has not turned for " + std::to_string(s.loop_age->count()) + " ms\n"};
        return {200, kTextType, "ok\n"};
    }
    if (path == "/readyz") {
        const std::string why = not_ready_reason(s);
        return why.empty() ? HttpReply{200, kTextType, "ready\n"} : HttpReply{503, kTextType, why + "\n"};
    }
    return {404, kTextType, "not found: /metrics, /healthz and /readyz are served\n"};
}

}  // namespace unbd::daemon
