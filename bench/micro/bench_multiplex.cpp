// Claim of the notes: "select() and poll() cost O(n) in the descriptors
// watched, epoll_wait() costs O(ready)" - why stage05/06 slow down with many
// idle connections and stage07 does not. Each benchmark watches N connected
// sockets of which exactly one has a byte waiting, and times one call plus
// the loop a server runs afterwards to find the ready descriptor:
//   select:     copy the fd_set (select overwrites it), select(), test every bit
//   poll:       poll() over the whole array, test every revents
//   epoll_wait: the registration happened once; epoll_wait() returns only the ready one
//
// What to expect on the course machine (2 vCPU KVM guest): at N = 1000,
// select ~42 us and poll ~40 us (~40 ns per watched socket) against ~0.18 us
// for epoll_wait; at N = 8192 poll takes ~1.4 ms - worse than linear, most
// likely because the kernel structures of thousands of sockets, all walked on
// every call, no longer fit in the caches - while epoll_wait still takes
// ~0.18 us, whatever N.
// (docs/measuring.md quotes the committed run,
// docs/results/micro/bench_multiplex.json.) The fit printed after each
// family ("_BigO") gives the cost per watched descriptor for select and poll
// (fitted as O(N)) and the constant for epoll (fitted as O(1)); "_RMS" says
// how well the fit holds.
//
// select stops at N = 1000: it cannot watch a descriptor numbered FD_SETSIZE
// (1024) or above, and stdio and the benchmark's own files hold a few low
// numbers. That is stage05's wall, whatever the limit on open files.
//
// Run: bench_multiplex [--benchmark_min_time=0.05]

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fd.hpp"
#include "micro_support.hpp"

namespace {

using iolab::Fd;
using iolab::micro::check;

// The peers (the "client" ends nobody watches) are moved to descriptor numbers
// from here up, so the watched ends keep the low numbers select() can take.
constexpr int kFirstPeerFd = FD_SETSIZE;

// N watched sockets (AF_UNIX stream pairs, like accepted connections), all
// idle except the last, whose peer has written one byte that nobody reads,
// so it stays readable on every call (level-triggered readiness).
class WatchedSockets {
public:
    explicit WatchedSockets(std::int64_t count) {
        watched_.reserve(static_cast<std::size_t>(count));
        peers_.reserve(static_cast<std::size_t>(count));
        for (std::int64_t i = 0; i < count; ++i) {
            std::array<int, 2> pair{};
            check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()), "socketpair");
            watched_.emplace_back(pair[0]);
            highest_fd_ = std::max(highest_fd_, pair[0]);
            Fd low_peer(pair[1]);  // closed at the end of this pass: its copy lives on
            peers_.emplace_back(
                check(::fcntl(low_peer.get(), F_DUPFD_CLOEXEC, kFirstPeerFd), "fcntl(F_DUPFD)"));
        }
        const char byte = 'x';
        check(::write(peers_.back().get(), &byte, 1), "write");
    }

    const std::vector<Fd>& watched() const { return watched_; }
    int ready_fd() const { return watched_.back().get(); }
    int highest_fd() const { return highest_fd_; }

private:
    int highest_fd_ = -1;
    std::vector<Fd> watched_;
    std::vector<Fd> peers_;
};

void BM_Select(benchmark::State& state) {
    const WatchedSockets sockets(state.range(0));
    if (sockets.highest_fd() >= FD_SETSIZE) {
        state.SkipWithError("a watched fd is >= FD_SETSIZE: select() cannot watch it");
        return;
    }
    // The server's master set, built once when connections come and go...
    fd_set interesting;
    FD_ZERO(&interesting);
    for (const Fd& fd : sockets.watched()) {
        FD_SET(fd.get(), &interesting);
    }
    const int nfds = sockets.highest_fd() + 1;

    for (auto _ : state) {
        // ...and copied before every call, because select() overwrites its
        // argument with the answer.
        fd_set readable = interesting;
        timeval no_wait{};
        const int ready = check(::select(nfds, &readable, nullptr, nullptr, &no_wait), "select");
        // The answer is a bitmap: finding who is ready means testing every bit.
        int found = 0;
        for (int fd = 0; fd < nfds; ++fd) {
            if (FD_ISSET(fd, &readable)) ++found;
        }
        if (ready != 1 || found != 1) {
            state.SkipWithError("select() did not report exactly one ready socket");
            break;
        }
    }
    state.SetComplexityN(state.range(0));
}

void BM_Poll(benchmark::State& state) {
    const WatchedSockets sockets(state.range(0));
    // No fd_set and no 1024 wall: an array of {fd, events, revents}. The
    // kernel reads all of it in and writes all of it back on every call.
    std::vector<pollfd> interesting;
    for (const Fd& fd : sockets.watched()) {
        interesting.push_back({fd.get(), POLLIN, 0});
    }

    for (auto _ : state) {
        const int ready = check(::poll(interesting.data(), interesting.size(), 0), "poll");
        // Again the server must scan the whole array to find the ready ones.
        const auto found = std::count_if(interesting.begin(), interesting.end(),
                                         [](const pollfd& entry) { return entry.revents != 0; });
        if (ready != 1 || found != 1) {
            state.SkipWithError("poll() did not report exactly one ready socket");
            break;
        }
    }
    state.SetComplexityN(state.range(0));
}

void BM_EpollWait(benchmark::State& state) {
    const WatchedSockets sockets(state.range(0));
    // The interest list lives in the kernel: each socket is registered once
    // (here, as a server would on accept), not passed in on every call.
    const Fd epoll(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    for (const Fd& fd : sockets.watched()) {
        epoll_event interest{};
        interest.events = EPOLLIN;
        interest.data.fd = fd.get();
        check(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd.get(), &interest), "epoll_ctl");
    }
    std::array<epoll_event, 64> events{};

    for (auto _ : state) {
        // Only ready sockets come back: the loop below runs once, whatever N.
        const int ready =
            check(::epoll_wait(epoll.get(), events.data(), events.size(), 0), "epoll_wait");
        int found = 0;
        for (int i = 0; i < ready; ++i) {
            if (events[static_cast<std::size_t>(i)].data.fd == sockets.ready_fd()) ++found;
        }
        if (ready != 1 || found != 1) {
            state.SkipWithError("epoll_wait() did not report exactly one ready socket");
            break;
        }
    }
    state.SetComplexityN(state.range(0));
}

// N, the number of watched descriptors. 1000 rather than 1024 so select() is
// measured at the largest N it can handle; the rest go to where only poll and
// epoll can follow (8192 sockets and their peers fit the 20000-file limit).
void select_sizes(benchmark::internal::Benchmark* bench) {
    for (int watched : {16, 64, 256, 1000}) {
        bench->Arg(watched);
    }
}
void all_sizes(benchmark::internal::Benchmark* bench) {
    for (int watched : {16, 64, 256, 1000, 4096, 8192}) {
        bench->Arg(watched);
    }
}

BENCHMARK(BM_Select)->ArgName("watched")->Apply(select_sizes)->Complexity(benchmark::oN);
BENCHMARK(BM_Poll)->ArgName("watched")->Apply(all_sizes)->Complexity(benchmark::oN);
BENCHMARK(BM_EpollWait)->ArgName("watched")->Apply(all_sizes)->Complexity(benchmark::o1);

}  // namespace

int main(int argc, char** argv) {
    // 8192 sockets and 8192 peers: far beyond the default soft limit of 1024.
    const rlim_t open_files = iolab::micro::raise_open_file_limit();
    benchmark::AddCustomContext("open_file_limit", std::to_string(open_files));
    return iolab::micro::run_benchmarks(argc, argv);
}
