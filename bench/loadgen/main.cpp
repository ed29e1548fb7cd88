// loadgen: the course's load generator.
//
// It opens connections to a server that speaks the iolab protocol, sends
// requests in a closed loop or at a fixed rate, checks every reply byte for
// byte, and reports requests, errors, req/s, MB/s and latency percentiles
// (a human summary, or JSON with --json for the compare runner).
//
//   loadgen --port 9007 --workload echo --conns 100 --duration 5
//   loadgen --port 9007 --workload http-get --path /hello.txt --expect-file www/hello.txt
//   loadgen --port 9005 --conns 10 --idle 5000      # what select() pays for idle clients
//   loadgen --port 9007 --rate 20000 --conns 50      # latency without coordinated omission
//
// The files: options (the command line), workload (what is sent and how a
// reply is checked), worker (one epoll loop per thread), histogram (latency),
// report (the summary and the JSON).

#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "options.hpp"
#include "report.hpp"
#include "worker.hpp"

namespace {

using namespace iolab::loadgen;

// Every connection needs a descriptor; the soft limit (often 1024) is far
// below what an idle-connection run needs, and raising it up to the hard
// limit needs no privilege. Returns the limit now in force.
rlim_t raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
        throw std::system_error(errno, std::generic_category(), "getrlimit");
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
            throw std::system_error(errno, std::generic_category(), "setrlimit");
    }
    return limit.rlim_cur;
}

Target resolve(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const int status = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (status != 0) throw UsageError("cannot resolve " + host + ": " + ::gai_strerror(status));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);

    Target target;
    std::memcpy(&target.address, found->ai_addr, found->ai_addrlen);
    target.length = found->ai_addrlen;
    // An IPv6 literal needs brackets before the port (and in the Host header).
    const bool ipv6_literal = host.find(':') != std::string::npos;
    target.name = (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
    return target;
}

// The --source addresses as socket addresses of the target's family (port 0).
std::vector<Target> resolve_sources(const std::vector<std::string>& names, const Target& target) {
    std::vector<Target> sources;
    for (const std::string& name : names) {
        addrinfo hints{};
        hints.ai_family = target.address.ss_family;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        if (::getaddrinfo(name.c_str(), "0", &hints, &found) != 0)
            throw UsageError("--source: " + name + " is not an address of the target's family");
        std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
        Target source;
        std::memcpy(&source.address, found->ai_addr, found->ai_addrlen);
        source.length = found->ai_addrlen;
        source.name = name;
        sources.push_back(source);
    }
    return sources;
}

std::string read_whole_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw UsageError("cannot read --expect-file " + path + ": " + std::strerror(errno));
    std::ostringstream content;
    content << file.rdbuf();
    return content.str();
}

extern "C" void on_stop_signal(int) {
    request_stop();
}

void install_signal_handlers() {
    // SIGINT/SIGTERM end the run early, and it still reports what it saw.
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    // A server that vanishes must not kill us: send() uses MSG_NOSIGNAL, and
    // this covers anything else.
    ::signal(SIGPIPE, SIG_IGN);
}

Nanos seconds(double value) {
    return Nanos(static_cast<std::int64_t>(value * 1e9));
}

int run(const Options& options) {
    const rlim_t limit = raise_descriptor_limit();
    const auto needed =
        static_cast<rlim_t>(options.conns + options.idle + 2 * options.threads + 16);
    if (needed > limit)
        throw UsageError(std::to_string(options.conns + options.idle) + " connections need about " +
                         std::to_string(needed) +
                         " descriptors; the limit (RLIMIT_NOFILE, hard) is " +
                         std::to_string(limit));

    const Target target = resolve(options.host, options.port);
    WorkloadSettings settings;
    settings.kind = options.workload;
    settings.size = options.size;
    settings.path = options.path;
    settings.host_header = target.name;
    if (options.expect_file) settings.expected_file = read_whole_file(*options.expect_file);
    const Workload workload(std::move(settings));

    // More threads than connections would only add idle loops.
    const int threads = std::min(options.threads, options.conns + options.idle);

    RunPlan plan;
    plan.target = target;
    plan.sources = resolve_sources(options.sources, target);
    plan.workload = &workload;
    plan.conns = options.conns;
    plan.pipeline = options.pipeline;
    plan.think = seconds(options.think_ms / 1e3);
    plan.rate = options.rate;
    plan.warmup = seconds(options.warmup_s);
    if (options.duration_s) plan.duration = seconds(*options.duration_s);
    plan.requests = options.requests;
    plan.timeout = seconds(options.timeout_ms / 1e3);
    plan.max_retries = options.max_retries;
    const double time_limit_s =
        options.time_limit_s.value_or(options.warmup_s + options.duration_s.value_or(50) + 10);
    plan.hard_deadline = Clock::now() + seconds(time_limit_s);

    SharedRun shared(threads);
    shared.tickets = static_cast<std::int64_t>(options.requests.value_or(0));

    // Active connection i goes to worker i % threads; idle ones are shared out
    // in equal ranges.
    std::vector<std::unique_ptr<Worker>> workers;
    int first_idle = 0;
    for (int t = 0; t < threads; ++t) {
        std::vector<int> active;
        for (int i = t; i < options.conns; i += threads)
            active.push_back(i);
        const int idle = options.idle / threads + (t < options.idle % threads ? 1 : 0);
        workers.push_back(std::make_unique<Worker>(plan, shared, active, first_idle, idle));
        first_idle += idle;
    }

    install_signal_handlers();
    if (!options.json) print_plan(options, target.name, threads, std::cout);
    {
        std::vector<std::jthread> running;
        for (auto& worker : workers)
            running.emplace_back([&worker] { worker->run(); });
    }  // joined here
    for (const auto& worker : workers)
        if (worker->failure()) std::rethrow_exception(worker->failure());

    RunSummary summary;
    summary.options = &options;
    summary.target = target.name;
    summary.threads = threads;
    summary.interrupted = stop_requested();
    TimePoint load_end = shared.load_start;
    for (const auto& worker : workers) {
        summary.stats.merge(worker->stats());
        summary.cut_short = summary.cut_short || (worker->cut_short() && !summary.interrupted);
        load_end = std::max(load_end, worker->load_end());
    }
    const TimePoint measure_start = shared.load_start + plan.warmup;
    summary.duration_s =
        std::max(0.0, std::chrono::duration<double>(load_end - measure_start).count());
    add_warnings(summary);

    if (options.json) {
        print_json(summary, std::cout);
        for (const std::string& warning : summary.warnings)
            std::cerr << "loadgen: warning: " << warning << "\n";
    } else {
        print_summary(summary, std::cout);
    }
    return exit_status(summary);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::optional<Options> options = parse_options(argc, argv);
        if (!options) return 0;  // --help
        return run(*options);
    } catch (const UsageError& error) {
        std::cerr << "loadgen: " << error.what() << "\n(loadgen --help lists the options)\n";
        return 2;
    } catch (const std::exception& error) {
        // std::system_error from a system call that should not fail.
        std::cerr << "loadgen: " << error.what() << '\n';
        return 1;
    }
}
