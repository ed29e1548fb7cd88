#include "report.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <string_view>

namespace iolab::loadgen {

namespace {

// The percentiles reported, as (JSON key, label, fraction).
struct Percentile {
    std::string_view key;
    std::string_view label;
    double fraction;
};
constexpr std::array<Percentile, 4> kPercentiles = {{
    {"p50", "p50", 0.50},
    {"p90", "p90", 0.90},
    {"p99", "p99", 0.99},
    {"p999", "p99.9", 0.999},
}};

// Nagle's algorithm holds a server's small second write until our ACK of its
// first; our delayed ACK holds that ACK for at least 40 ms on Linux, plus
// timer granularity and the wake-ups on both sides (measured 44-52 ms on the
// course machines, HZ=250). A median in this band means nearly every request
// paid that wait.
constexpr double kNagleLowMs = 38;
constexpr double kNagleHighMs = 60;

std::string fixed(double value, int decimals) {
    std::array<char, 64> text;
    std::snprintf(text.data(), text.size(), "%.*f", decimals, value);
    return text.data();
}

// A latency in the unit that keeps it readable: 5.2 us, 231 us, 40.12 ms, 1.20 s.
std::string latency(std::uint64_t nanoseconds) {
    const double us = static_cast<double>(nanoseconds) / 1e3;
    if (us < 10) return fixed(us, 1) + " us";
    if (us < 1e3) return fixed(us, 0) + " us";
    if (us < 1e6) return fixed(us / 1e3, 2) + " ms";
    return fixed(us / 1e6, 2) + " s";
}

double per_second(double count, double seconds) {
    return seconds > 0 ? count / seconds : 0;
}

std::string json_string(std::string_view text) {
    std::string json = "\"";
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            json += '\\';
            json += c;
        } else if (byte < 0x20) {
            std::array<char, 8> escaped;
            std::snprintf(escaped.data(), escaped.size(), "\\u%04x", byte);
            json += escaped.data();
        } else {
            json += c;
        }
    }
    return json + "\"";
}

std::string describe_workload(const Options& options) {
    std::string text(workload_name(options.workload));
    switch (options.workload) {
        case WorkloadKind::echo:
        case WorkloadKind::http_echo:
            return text + " " + std::to_string(options.size) + " B";
        case WorkloadKind::get:
        case WorkloadKind::http_get:
            return text + " " + options.path + (options.expect_file ? " (checked)" : "");
    }
    return text;
}

}  // namespace

void add_warnings(RunSummary& summary) {
    const Stats& stats = summary.stats;
    if (summary.interrupted)
        summary.warnings.push_back("interrupted: the numbers cover part of the run");
    if (summary.cut_short)
        summary.warnings.push_back("the time limit struck before the run's end (--time-limit)");
    if (summary.options->conns > 0 && stats.requests == 0)
        summary.warnings.push_back("no request completed");
    const double p50_ms = static_cast<double>(stats.latency_ns.percentile(0.5)) / 1e6;
    if (stats.requests > 0 && p50_ms >= kNagleLowMs && p50_ms <= kNagleHighMs)
        summary.warnings.push_back(
            "p50 latency " + fixed(p50_ms, 1) +
            " ms looks like Nagle + delayed ACK: the server sends a small write (a header) "
            "then another (the body) without TCP_NODELAY, MSG_MORE or one combined write. "
            "If it stays near 40 ms with --conns 1, that is it; otherwise the server may "
            "just be this slow under this load");
}

int exit_status(const RunSummary& summary) {
    const bool nothing_done = summary.options->conns > 0 && summary.stats.requests == 0;
    const bool failed =
        summary.stats.error_count() > 0 || nothing_done || summary.cut_short || summary.interrupted;
    return failed ? 1 : 0;
}

void print_plan(const Options& options, const std::string& target, int threads, std::ostream& out) {
    out << "loadgen: " << describe_workload(options) << " to " << target << ", " << options.conns
        << " conns";
    if (options.idle > 0) out << " + " << options.idle << " idle";
    out << ", pipeline " << options.pipeline << ", ";
    if (options.rate > 0)
        out << "fixed rate " << fixed(options.rate, 0) << " req/s";
    else
        out << "closed loop";
    if (options.think_ms > 0) out << " (think " << fixed(options.think_ms, 1) << " ms)";
    out << ", " << threads << (threads == 1 ? " thread" : " threads") << ", ";
    if (options.duration_s) out << fixed(*options.duration_s, 1) << " s";
    if (options.duration_s && options.requests) out << " or ";
    if (options.requests) out << *options.requests << " requests";
    if (options.warmup_s > 0) out << " after " << fixed(options.warmup_s, 1) << " s warmup";
    out << std::endl;  // flushed now: the run takes a while
}

void print_summary(const RunSummary& summary, std::ostream& out) {
    const Stats& stats = summary.stats;
    const auto requests = static_cast<double>(stats.requests);
    const auto bytes = static_cast<double>(stats.payload_bytes);
    out << "requests    " << stats.requests << " in " << fixed(summary.duration_s, 2)
        << " s: " << fixed(per_second(requests, summary.duration_s), 0) << " req/s\n";
    out << "payload     " << fixed(bytes / 1e6, 2)
        << " MB received: " << fixed(per_second(bytes, summary.duration_s) / 1e6, 2) << " MB/s\n";
    if (stats.requests > 0) {
        out << "latency    ";
        for (const Percentile& p : kPercentiles)
            out << " " << p.label << " " << latency(stats.latency_ns.percentile(p.fraction)) << ",";
        out << " max " << latency(stats.latency_ns.max()) << " (mean "
            << latency(static_cast<std::uint64_t>(stats.latency_ns.mean())) << ")\n";
    }
    out << "errors      " << stats.error_count() << "\n";
    for (std::size_t i = 0; i < kErrorKindCount; ++i) {
        if (stats.errors[i] == 0) continue;
        std::array<char, 64> count;
        std::snprintf(count.data(), count.size(), "  %-13s%6llu  ", kErrorKindNames[i].data(),
                      static_cast<unsigned long long>(stats.errors[i]));
        out << count.data() << "first: " << stats.first_error[i] << "\n";
    }
    if (summary.options->idle > 0)
        out << "idle        " << stats.idle_open_at_end << " of " << summary.options->idle
            << " still open at the end\n";
    if (stats.reconnects > 0) {
        out << "reconnects  " << stats.reconnects;
        if (stats.server_closes > 0)
            out << " (" << stats.server_closes << " after the server announced Connection: close)";
        out << "\n";
    }
    for (const std::string& warning : summary.warnings)
        out << "warning: " << warning << "\n";
}

void print_json(const RunSummary& summary, std::ostream& out) {
    const Options& options = *summary.options;
    const Stats& stats = summary.stats;
    const bool echoes =
        options.workload == WorkloadKind::echo || options.workload == WorkloadKind::http_echo;
    const auto us = [](std::uint64_t nanoseconds) {
        return fixed(static_cast<double>(nanoseconds) / 1e3, 1);
    };

    out << "{\"workload\":" << json_string(workload_name(options.workload))
        << ",\"target\":" << json_string(summary.target)
        << ",\"path\":" << (echoes ? "null" : json_string(options.path))
        << ",\"size\":" << (echoes ? std::to_string(options.size) : "null")
        << ",\"conns\":" << options.conns << ",\"idle\":" << options.idle
        << ",\"pipeline\":" << options.pipeline << ",\"threads\":" << summary.threads
        << ",\"rate\":" << fixed(options.rate, 3) << ",\"think_ms\":" << fixed(options.think_ms, 3)
        << ",\"warmup_s\":" << fixed(options.warmup_s, 3)
        << ",\"duration_s\":" << fixed(summary.duration_s, 3) << ",\"requests\":" << stats.requests
        << ",\"errors\":" << stats.error_count() << ",\"error_kinds\":{";
    for (std::size_t i = 0; i < kErrorKindCount; ++i)
        out << (i ? "," : "") << json_string(kErrorKindNames[i]) << ":" << stats.errors[i];
    out << "},\"first_errors\":{";
    bool first = true;
    for (std::size_t i = 0; i < kErrorKindCount; ++i) {
        if (stats.errors[i] == 0) continue;
        out << (first ? "" : ",") << json_string(kErrorKindNames[i]) << ":"
            << json_string(stats.first_error[i]);
        first = false;
    }
    const auto requests = static_cast<double>(stats.requests);
    const auto bytes = static_cast<double>(stats.payload_bytes);
    out << "},\"rps\":" << fixed(per_second(requests, summary.duration_s), 1)
        << ",\"mbps\":" << fixed(per_second(bytes, summary.duration_s) / 1e6, 3)
        << ",\"bytes\":" << stats.payload_bytes << ",\"latency_us\":{";
    for (const Percentile& p : kPercentiles)
        out << json_string(p.key) << ":" << us(stats.latency_ns.percentile(p.fraction)) << ",";
    out << "\"max\":" << us(stats.latency_ns.max())
        << ",\"mean\":" << fixed(stats.latency_ns.mean() / 1e3, 1) << "}"
        << ",\"idle_open_at_end\":" << stats.idle_open_at_end
        << ",\"reconnects\":" << stats.reconnects << ",\"server_closes\":" << stats.server_closes
        << ",\"cut_short\":" << (summary.cut_short ? "true" : "false")
        << ",\"interrupted\":" << (summary.interrupted ? "true" : "false") << ",\"warnings\":[";
    for (std::size_t i = 0; i < summary.warnings.size(); ++i)
        out << (i ? "," : "") << json_string(summary.warnings[i]);
    out << "]}" << std::endl;
}

}  // namespace iolab::loadgen
