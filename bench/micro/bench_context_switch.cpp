// Claim of the notes: "switching between threads is cheaper than switching
// between processes" - the argument for a thread pool (stage03) over a
// process per connection (stage02). Measured as a pipe ping-pong: one byte
// goes over a pipe, the other side sends it back over a second pipe. Each
// round trip is two blocking reads that wake the other side, so two context
// switches plus four small system calls.
//
// What to expect on the course machine (2 vCPU KVM guest; docs/measuring.md
// quotes the committed run, docs/results/micro/bench_context_switch.json):
//   same core:    ~1.8-2.3 us round trip, threads and processes within ~15%:
//                 on a modern kernel the switch itself is not where the time
//                 goes (a process switch changes the page tables, but PCID
//                 keeps the TLB warm).
//   across cores: ~60-85 us round trip: the sleeping side's vCPU is halted and
//                 waking it (an IPI through the hypervisor) costs tens of us
//                 each way. This, not the "switch", is what caps a blocking
//                 design at one connection.
//
// Run: bench_context_switch [--benchmark_min_time=0.05]

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <thread>

#include "fd.hpp"
#include "micro_support.hpp"

namespace {

using iolab::Fd;
using iolab::micro::check;
using iolab::micro::cpu_allowed;
using iolab::micro::pin_this_thread;

// Where the two sides run. The pinger is the benchmark's own thread.
constexpr int kPingCpu = 0;
constexpr int kSameCore = 0;   // the ponger shares CPU 0: a switch on every hop
constexpr int kOtherCore = 1;  // the ponger gets CPU 1: a cross-CPU wake-up on every hop

struct Pipe {
    Fd read_end;
    Fd write_end;
};

Pipe make_pipe() {
    std::array<int, 2> fds{};
    check(::pipe2(fds.data(), O_CLOEXEC), "pipe2");
    return {Fd(fds[0]), Fd(fds[1])};
}

void write_byte(int fd) {
    const char byte = 'x';
    check(::write(fd, &byte, 1), "write");
}

// Returns false at end of file: the other side has gone.
bool read_byte(int fd) {
    char byte = 0;
    return check(::read(fd, &byte, 1), "read") == 1;
}

// The echoing side, run by a thread or a forked child: block until a byte
// arrives, send it back, until the pinger closes its end. Uses only raw reads
// and writes (no exceptions, no allocation) so it is safe after fork().
void pong_loop(int ping_in, int pong_out) {
    char byte = 0;
    while (::read(ping_in, &byte, 1) == 1) {
        if (::write(pong_out, &byte, 1) != 1) break;
    }
}

// Skips the benchmark if the CPUs it needs are not available to us.
bool cpus_available(benchmark::State& state, int pong_cpu) {
    if (cpu_allowed(kPingCpu) && cpu_allowed(pong_cpu)) return true;
    state.SkipWithError(pong_cpu == kPingCpu ? "CPU 0 is not available to this process"
                                             : "needs CPUs 0 and 1: fewer than 2 cores available");
    return false;
}

void BM_PipePingPong_Threads(benchmark::State& state, int pong_cpu) {
    if (!cpus_available(state, pong_cpu)) return;
    iolab::micro::AffinityGuard restore_affinity;
    pin_this_thread(kPingCpu);

    // Declared first so it is destroyed last: should the loop throw, the pipes
    // close first, the ponger reads end of file and returns, and the join succeeds.
    std::jthread ponger;
    Pipe ping = make_pipe();
    Pipe pong = make_pipe();
    ponger = std::jthread([&, pong_cpu] {
        pin_this_thread(pong_cpu);
        pong_loop(ping.read_end.get(), pong.write_end.get());
    });

    for (auto _ : state) {
        write_byte(ping.write_end.get());
        read_byte(pong.read_end.get());
    }

    ping.write_end.reset();  // end of file: the ponger's loop ends
    ponger.join();
}
BENCHMARK_CAPTURE(BM_PipePingPong_Threads, same_core, kSameCore)->UseRealTime();
BENCHMARK_CAPTURE(BM_PipePingPong_Threads, cross_core, kOtherCore)->UseRealTime();

// Kills and reaps the child if the benchmark leaves early, so no process is
// left behind blocked on a pipe.
class ChildProcess {
public:
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    // Waits for a normal exit; returns the exit status (or -1 if killed).
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0) {
            if (errno != EINTR) iolab::micro::throw_errno("waitpid");
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_;
};

void BM_PipePingPong_Processes(benchmark::State& state, int pong_cpu) {
    if (!cpus_available(state, pong_cpu)) return;
    iolab::micro::AffinityGuard restore_affinity;
    pin_this_thread(kPingCpu);

    Pipe ping = make_pipe();
    Pipe pong = make_pipe();
    const pid_t pid = check(::fork(), "fork");
    if (pid == 0) {
        // The child keeps only its own ends: were it to hold ping's write end
        // open, it would never see end of file and never exit.
        ping.write_end.reset();
        pong.read_end.reset();
        cpu_set_t only;
        CPU_ZERO(&only);
        CPU_SET(pong_cpu, &only);
        if (::sched_setaffinity(0, sizeof only, &only) != 0) ::_exit(2);
        pong_loop(ping.read_end.get(), pong.write_end.get());
        ::_exit(0);  // _exit: no atexit handlers, no benchmark reporting in the child
    }
    ChildProcess child(pid);
    ping.read_end.reset();
    pong.write_end.reset();

    for (auto _ : state) {
        write_byte(ping.write_end.get());
        if (!read_byte(pong.read_end.get())) {
            state.SkipWithError("the ponging child exited early");
            break;
        }
    }

    ping.write_end.reset();
    if (child.wait() != 0) state.SkipWithError("the ponging child failed");
}
BENCHMARK_CAPTURE(BM_PipePingPong_Processes, same_core, kSameCore)->UseRealTime();
BENCHMARK_CAPTURE(BM_PipePingPong_Processes, cross_core, kOtherCore)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    return iolab::micro::run_benchmarks(argc, argv);
}
