#include "options.hpp"

#include <charconv>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <vector>

namespace iolab::loadgen {

namespace {

constexpr std::string_view kUsage = R"(usage: loadgen --port N [options]

Drives a server that speaks the iolab protocol (line commands or HTTP/1.1),
checks every reply byte for byte, and reports requests, errors, req/s, MB/s
and latency percentiles.

workload:
  --workload W      echo       ECHO <size bytes>; expects the same bytes and LF (default)
                    get        GET <path>; expects OK <n> and n bytes
                    http-get   GET <path> HTTP/1.1; expects 200 with Content-Length
                    http-echo  POST /echo with a <size>-byte body; expects it back
  --size B          echo, http-echo: payload bytes (default 64; echo at most 8186,
                    http-echo at most 1 MiB)
  --path P          get, http-get: the path to fetch (default /index.html)
  --expect-file F   get, http-get: the file the server serves (a local path); every
                    body is compared with it. Without it only the framing and the
                    announced lengths are checked.

target:
  --host H          server address or name (default 127.0.0.1)
  --port N          server port (required)
  --source A,B,...  local addresses to connect from, in turn (bind() before
                    connect()): each address has its own ephemeral ports, about
                    28,000 by default (net.ipv4.ip_local_port_range)
  --sources N       the same with 127.0.0.1 ... 127.0.0.N (every 127/8 address is
                    loopback on Linux); for a server on 127.0.0.1

load:
  --conns N         active connections (default 10)
  --idle N          extra connections, opened first and kept silent for the whole
                    run; each must still be open at the end (default 0)
  --pipeline D      requests in flight per connection (default 1)
  --think-ms X      closed loop: pause X ms after each reply before the next
                    request, like mostly idle WAN clients (default 0)
  --rate R          fixed rate: R requests/s in total, spread over the connections.
                    Latency counts from when each request was due, not from when it
                    could be sent, so a stalling server cannot hide its stall
                    (no coordinated omission). Without it: closed loop, the next
                    request leaves when the reply to the previous one arrives.
  --threads T       worker threads, each with its own epoll loop (default 1)

length:
  --duration S      measure for S seconds (default 5 unless --requests is given)
  --requests N      send N measured requests (with --duration: whichever ends first)
  --warmup S        load for S seconds before measuring (default 0)
  --timeout MS      a connect or a reply slower than this is an error (default 5000)
  --time-limit S    hard cap on the whole run, whatever the server does (default:
                    warmup + duration + 10 s; warmup + 60 s with --requests alone)
  --max-retries N   failures in a row after which a connection is given up; until
                    then it is reconnected (default 10)

output:
  --json            print one JSON object on stdout instead of the summary
  --help            print this text

Exit status: 0 when the run completed without errors, 1 when there were errors
(or no request completed, or the run was cut short), 2 for a usage error.
)";

std::string quoted(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

template <typename Number>
std::string show(Number value) {
    std::ostringstream text;
    text << value;
    return text.str();
}

// A number in [min, max], all of `text` and nothing else.
template <typename Number>
Number parse_number(std::string_view flag, std::string_view text, Number min, Number max) {
    Number value{};
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value);
    bool valid = !text.empty() && error == std::errc() && stop == end;
    if constexpr (std::is_floating_point_v<Number>) valid = valid && std::isfinite(value);
    if (!valid) throw UsageError(std::string(flag) + ": " + quoted(text) + " is not a number");
    if (value < min || value > max)
        throw UsageError(std::string(flag) + " must be between " + show(min) + " and " + show(max));
    return value;
}

// "127.0.0.1,127.0.0.2" -> its addresses (checked when the target is known).
std::vector<std::string> split_addresses(std::string_view text) {
    std::vector<std::string> out;
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        if (item.empty()) throw UsageError("--source: an empty address in " + quoted(text));
        out.emplace_back(item);
        if (comma == std::string_view::npos) return out;
        text.remove_prefix(comma + 1);
    }
}

}  // namespace

void print_usage(std::ostream& out) {
    out << kUsage;
}

std::optional<Options> parse_options(int argc, char** argv) {
    Options options;
    bool port_given = false;
    bool size_given = false;
    bool path_given = false;
    const std::vector<std::string_view> args(argv + 1, argv + argc);

    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") {
            print_usage(std::cout);
            return std::nullopt;
        }
        if (arg == "--json") {
            options.json = true;
            continue;
        }
        if (!arg.starts_with("--")) throw UsageError("unexpected argument " + quoted(arg));

        // Every other flag takes a value: `--flag value` or `--flag=value`.
        std::string_view flag = arg;
        std::string_view value;
        if (const std::size_t equals = arg.find('='); equals != std::string_view::npos) {
            flag = arg.substr(0, equals);
            value = arg.substr(equals + 1);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            throw UsageError(std::string(flag) + " needs a value");
        }

        if (flag == "--workload") {
            std::optional<WorkloadKind> kind = parse_workload(value);
            if (!kind)
                throw UsageError("--workload: " + quoted(value) +
                                 " is not one of echo, get, http-get, http-echo");
            options.workload = *kind;
        } else if (flag == "--host") {
            options.host = value;
        } else if (flag == "--source") {
            if (!options.sources.empty())
                throw UsageError("--source and --sources: give one of them, once");
            options.sources = split_addresses(value);
        } else if (flag == "--sources") {
            if (!options.sources.empty())
                throw UsageError("--source and --sources: give one of them, once");
            const int count = parse_number(flag, value, 1, 254);
            for (int host = 1; host <= count; ++host)
                options.sources.push_back("127.0.0." + std::to_string(host));
        } else if (flag == "--port") {
            options.port = parse_number<std::uint16_t>(flag, value, 1, 65535);
            port_given = true;
        } else if (flag == "--conns") {
            options.conns = parse_number(flag, value, 0, 1'000'000);
        } else if (flag == "--idle") {
            options.idle = parse_number(flag, value, 0, 1'000'000);
        } else if (flag == "--pipeline") {
            options.pipeline = parse_number(flag, value, 1, 4096);
        } else if (flag == "--think-ms") {
            options.think_ms = parse_number(flag, value, 0.0, 3'600'000.0);
        } else if (flag == "--rate") {
            options.rate = parse_number(flag, value, 0.001, 1e9);
        } else if (flag == "--duration") {
            options.duration_s = parse_number(flag, value, 0.001, 86'400.0);
        } else if (flag == "--requests") {
            options.requests = parse_number<std::uint64_t>(flag, value, 1, 1'000'000'000'000);
        } else if (flag == "--warmup") {
            options.warmup_s = parse_number(flag, value, 0.0, 86'400.0);
        } else if (flag == "--threads") {
            options.threads = parse_number(flag, value, 1, 256);
        } else if (flag == "--size") {
            options.size = parse_number<std::size_t>(flag, value, 0, kMaxPostBody);
            size_given = true;
        } else if (flag == "--path") {
            options.path = value;
            path_given = true;
        } else if (flag == "--expect-file") {
            options.expect_file = value;
        } else if (flag == "--timeout") {
            options.timeout_ms = parse_number(flag, value, 1.0, 3'600'000.0);
        } else if (flag == "--time-limit") {
            options.time_limit_s = parse_number(flag, value, 0.001, 86'400.0);
        } else if (flag == "--max-retries") {
            options.max_retries = parse_number(flag, value, 0, 1'000'000);
        } else {
            throw UsageError("unknown option " + quoted(flag));
        }
    }

    // Combinations that cannot mean what the user wants.
    if (!port_given) throw UsageError("--port is required");
    if (options.conns + options.idle == 0)
        throw UsageError("nothing to do: --conns and --idle are 0");
    const bool echoes =
        options.workload == WorkloadKind::echo || options.workload == WorkloadKind::http_echo;
    if (echoes && (path_given || options.expect_file))
        throw UsageError("--path and --expect-file apply to get and http-get");
    if (!echoes && size_given)
        throw UsageError("--size applies to echo and http-echo (a GET's size is the file's)");
    if (options.workload == WorkloadKind::echo && options.size > kMaxEchoSize)
        throw UsageError("--size: an ECHO line holds at most " + std::to_string(kMaxEchoSize) +
                         " bytes (the protocol's lines are at most 8 KiB)");
    if (options.path.empty() || options.path.find_first_of(" \t\r\n") != std::string::npos)
        throw UsageError("--path must be non-empty and hold no whitespace");
    if (options.rate > 0 && options.think_ms > 0)
        throw UsageError("--think-ms is for the closed loop; --rate already sets the pace");
    if ((options.rate > 0 || options.requests) && options.conns == 0)
        throw UsageError("--rate and --requests need active connections (--conns)");
    if (!options.duration_s && !options.requests) options.duration_s = 5.0;
    return options;
}

}  // namespace iolab::loadgen
