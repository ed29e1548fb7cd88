// Claim of the notes: "a system call is far more expensive than a function
// call" - every select() rebuild, every read() returning EAGAIN, every
// one-byte write is paid in these units. This puts a number on one crossing
// of the user/kernel boundary.
//
// What to expect on the course machine (2 vCPU KVM guest): a plain function
// call well under 1 ns (a few cycles), a trivial system call (getppid)
// ~75-95 ns (the committed run: docs/measuring.md), and clock_gettime()
// ~16 ns because the vDSO answers it in user space without entering the
// kernel at all. So one system call
// costs about a hundred function calls.
//
// Run: bench_syscall [--benchmark_min_time=0.05]

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "micro_support.hpp"

namespace {

// The baseline: a real call and return that the compiler may not inline or
// fold away (noinline, and the empty asm makes the body opaque).
[[gnu::noinline]] long plain_function(long value) {
    asm volatile("");
    return value + 1;
}

void BM_PlainFunctionCall(benchmark::State& state) {
    long value = 0;
    for (auto _ : state) {
        value = plain_function(value);
        benchmark::DoNotOptimize(value);
    }
}
BENCHMARK(BM_PlainFunctionCall);

// getppid does almost nothing in the kernel, so the time is the crossing
// itself: entry, the mitigations for Spectre/Meltdown, and the return.
// syscall() rather than getppid(): no libc wrapper may cache the answer.
void BM_TrivialSyscall_getppid(benchmark::State& state) {
    for (auto _ : state) {
        long parent = ::syscall(SYS_getppid);
        benchmark::DoNotOptimize(parent);
    }
}
BENCHMARK(BM_TrivialSyscall_getppid);

// For contrast: clock_gettime looks like a system call but is served by the
// vDSO, kernel code mapped into the process and run in user mode. This is why
// servers can afford to read the clock on every event.
void BM_VdsoClockGettime(benchmark::State& state) {
    timespec now{};
    for (auto _ : state) {
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        benchmark::DoNotOptimize(now);
    }
}
BENCHMARK(BM_VdsoClockGettime);

}  // namespace

int main(int argc, char** argv) {
    return iolab::micro::run_benchmarks(argc, argv);
}
