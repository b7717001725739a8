// Prometheus' text exposition format (version 0.0.4), written by hand: one
// family at a time, `# HELP` and `# TYPE` first, then its samples. Label
// values are escaped (\\, \", \n); numbers are written so that Prometheus
// reads them back exactly (integers as integers, +Inf for the last bucket).
// Pure: no I/O. `promtool check metrics` is the test of what it writes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace unbd::daemon {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
public:
    // type: "counter", "gauge" or "histogram".
    void family(const std::string& name, const std::string& type, const std::string& help);
    void sample(const std::string& name, const Labels& labels, double value);
    void sample(const std::string& name, const Labels& labels, uint64_t value);
    // A histogram's samples: cumulative `_bucket`s for each upper bound,
    // +Inf, then `_sum` and `_count`. `counts[i]` is the number of
    // observations <= bounds[i] and > bounds[i-1]; counts has one more
    // entry than bounds, for the observations above the last bound.
    void histogram(const std::string& name, const Labels& labels, const std::vector<double>& bounds,
                   const std::vector<uint64_t>& counts, double sum);

    const std::string& text() const noexcept { return out_; }

    static std::string escape_label_value(const std::string& value);

private:
    void line(const std::string& name, const Labels& labels, const std::string& value);
    std::string out_;
};

}  // namespace unbd::daemon
