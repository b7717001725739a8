#include "daemon/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace unbd::daemon {

namespace {

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    // The shortest text that reads back as v: bucket bounds stay "5e-05",
    // not "5.0000000000000002e-05".
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : "NaN";
}

}  // namespace

std::string PrometheusText::escape_label_value(const std::string& value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void PrometheusText::family(const std::string& name, const std::string& type, const std::string& help) {
    // HELP text escapes only \ and newline.
    std::string h;
    for (char c : help) {
        if (c == '\\') h += "\\\\";
        else if (c == '\n') h += "\\n";
        else h += c;
    }
    out_ += "# HELP " + name + " " + h + "\n# TYPE " + name + " " + type + "\n";
}

void PrometheusText::line(const std::string& name, const Labels& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (i > 0) out_ += ',';
            out_ += labels[i].first + "=\"" + escape_label_value(labels[i].second) + '"';
        }
        out_ += '}';
    }
    out_ += ' ' + value + '\n';
}

void PrometheusText::sample(const std::string& name, const Labels& labels, double value) {
    line(name, labels, number(value));
}

void PrometheusText::sample(const std::string& name, const Labels& labels, uint64_t value) {
    line(name, labels, std::to_string(value));
}

void PrometheusText::histogram(const std::string& name, const Labels& labels, const std::vector<double>& bounds,
                               const std::vector<uint64_t>& counts, double sum) {
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += i < counts.size() ? counts[i] : 0;
        Labels with_le = labels;
        with_le.emplace_back("le", i < bounds.size() ? number(bounds[i]) : "+Inf");
        line(name + "_bucket", with_le, std::to_string(cumulative));
    }
    line(name + "_sum", labels, number(sum));
    line(name + "_count", labels, std::to_string(cumulative));
}

}  // namespace unbd::daemon
