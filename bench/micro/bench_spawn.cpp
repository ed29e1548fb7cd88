// Claim of the notes: "creating a thread is cheaper than creating a process,
// and fork() gets dearer as the parent grows" - why stage02 (a process per
// connection) pays on every accept, and why stage03 creates its workers once.
//
// fork() does not copy the parent's memory (pages are shared copy-on-write),
// but it copies the page tables that map it and marks every page read-only:
// work proportional to the parent's resident memory. A thread shares the page
// tables, so its cost does not depend on the heap at all.
//
// What to expect on the course machine (2 vCPU KVM guest): std::thread
// create + join ~12 us; fork + waitpid of this small process ~150 us; with a
// 64 MiB touched heap ~1.3 ms and with 256 MiB ~3.7 ms, growing with the heap.
// (docs/measuring.md quotes the committed run: docs/results/micro/bench_spawn.json.)
//
// Run: bench_spawn [--benchmark_min_time=0.05]

#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <thread>
#include <vector>

#include "micro_support.hpp"

namespace {

using iolab::micro::check;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// One fork() whose child exits at once, and the parent's waitpid() for it:
// the full cost of a short-lived worker process, exec not included.
void fork_and_wait(benchmark::State& state) {
    const pid_t pid = check(::fork(), "fork");
    if (pid == 0) ::_exit(0);  // _exit: the child must not run the parent's cleanup
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) iolab::micro::throw_errno("waitpid");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        state.SkipWithError("the child did not exit with 0");
    }
}

void BM_ForkWait_SmallProcess(benchmark::State& state) {
    for (auto _ : state) {
        fork_and_wait(state);
    }
}
BENCHMARK(BM_ForkWait_SmallProcess)->UseRealTime();

// The same, after the parent allocates state.range(0) MiB and writes every
// byte of it, so every page is resident and must be mapped in the child.
// (This machine's transparent huge pages are "madvise", so the heap is made of
// 4 KiB pages, as a server's malloc heap would be.)
void BM_ForkWait_LargeHeap(benchmark::State& state) {
    const std::vector<char> heap(static_cast<std::size_t>(state.range(0)) * kMiB, 'x');
    benchmark::DoNotOptimize(heap.data());
    for (auto _ : state) {
        fork_and_wait(state);
    }
}
BENCHMARK(BM_ForkWait_LargeHeap)->ArgName("heap_MiB")->Arg(64)->Arg(256)->UseRealTime();

// A thread that does nothing, created and joined: the cost a thread pool
// avoids by creating its workers once.
void BM_ThreadCreateJoin(benchmark::State& state) {
    for (auto _ : state) {
        std::thread worker([] {});
        worker.join();
    }
}
BENCHMARK(BM_ThreadCreateJoin)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    return iolab::micro::run_benchmarks(argc, argv);
}
