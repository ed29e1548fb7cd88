// Small helpers shared by the micro-benchmarks in this directory: error
// checking, CPU pinning, the open-file limit, and a main() that reports a
// failed system call instead of aborting.
//
// The benchmarks use only the header-only Fd from common/ (not the library),
// so they build on their own and measure system calls, not our code.
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <system_error>

namespace iolab::micro {

// A system call that fails here is a broken setup, not a result: stop loudly.
[[noreturn]] inline void throw_errno(const char* what) {
    throw std::system_error(errno, std::system_category(), what);
}

// check(::pipe(fds), "pipe"): passes the return value through, throws on -1.
template <typename Ret>
Ret check(Ret ret, const char* what) {
    if (ret < 0) throw_errno(what);
    return ret;
}

// True when this process may run on `cpu` (a container or taskset may forbid it).
inline bool cpu_allowed(int cpu) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    check(::sched_getaffinity(0, sizeof allowed, &allowed), "sched_getaffinity");
    return CPU_ISSET(cpu, &allowed);
}

// Pins the calling thread (not the whole process: on Linux pid 0 means "this
// thread") to one CPU. Only async-signal-safe calls, so a forked child may use it.
inline void pin_this_thread(int cpu) {
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    check(::sched_setaffinity(0, sizeof only, &only), "sched_setaffinity");
}

// Restores the calling thread's CPU affinity when it goes out of scope, so a
// benchmark that pins does not leave the next one pinned.
class AffinityGuard {
public:
    AffinityGuard() {
        CPU_ZERO(&saved_);
        check(::sched_getaffinity(0, sizeof saved_, &saved_), "sched_getaffinity");
    }
    ~AffinityGuard() { ::sched_setaffinity(0, sizeof saved_, &saved_); }
    AffinityGuard(const AffinityGuard&) = delete;
    AffinityGuard& operator=(const AffinityGuard&) = delete;

private:
    cpu_set_t saved_;
};

// Servers watching thousands of descriptors need more than the usual soft
// limit of 1024: raise it to the hard limit, as the servers and loadgen do.
inline rlim_t raise_open_file_limit() {
    rlimit limit{};
    check(::getrlimit(RLIMIT_NOFILE, &limit), "getrlimit(RLIMIT_NOFILE)");
    limit.rlim_cur = limit.rlim_max;
    check(::setrlimit(RLIMIT_NOFILE, &limit), "setrlimit(RLIMIT_NOFILE)");
    return limit.rlim_cur;
}

// The body of every benchmark main(): Google Benchmark's usual sequence, plus
// a readable message (not std::terminate) when a benchmark throws.
inline int run_benchmarks(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    try {
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "benchmark failed: %s\n", error.what());
        benchmark::Shutdown();
        return 1;
    }
    benchmark::Shutdown();
    return 0;
}

}  // namespace iolab::micro
