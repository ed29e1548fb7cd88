// stage11_reactor_per_core: stage07's epoll loop, one per core.
//
// The model: --threads copies of stage07's loop (one per core by default),
// each on a thread of its own with its own epoll instance, connections and
// SO_REUSEPORT listener on the one port; the kernel spreads new connections
// over the listeners by a hash of addresses and ports. The cost: the hash
// does not know load, and the loops still share one descriptor table.
//
//   run(), accept_all(), serve(), watch(), unwatch()   stage07's, per loop
//   main()    binds N listeners to one port, starts N loops, joins them

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "connection.hpp"
#include "log.hpp"
#include "net.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

// iolab:shared BEGIN interest
bool wants_read(iolab::Interest interest) {
    return interest == iolab::Interest::read || interest == iolab::Interest::read_write;
}

bool wants_write(iolab::Interest interest) {
    return interest == iolab::Interest::write || interest == iolab::Interest::read_write;
}
// iolab:shared END interest

// One event loop: stage07's Server, now one of several. Nothing in it is
// touched by another thread (the DocRoot is only read: openat2() on its directory).
class Loop {
public:
    Loop(iolab::Fd listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts,
         std::size_t max_connections);
    void run();  // serves until SIGINT or SIGTERM (or another loop fails)

private:
    void accept_all();
    void serve(int fd);
    void watch(int fd, iolab::Interest interest);
    void unwatch(int fd);
    void close_connection(int fd);

    iolab::Fd listener_;  // this loop's own socket of the SO_REUSEPORT group
    // A stop shuts the listener down (shutdown(2), from the signal handler):
    // it turns readable for good, which wakes this loop's epoll_wait() on
    // whichever thread the signal happened to interrupt.
    iolab::WakeOnStop wake_on_stop_;
    std::size_t max_connections_;  // this loop's share of the descriptor table
    std::size_t open_ = 0;         // connections open now (connections_ has gaps)
    const iolab::DocRoot& root_;
    // Level-triggered, as stage07's default: a read() that comes back short
    // ends a connection's turn (common/connection.hpp).
    iolab::Drain drain_ = iolab::Drain::until_short_read;
    // Indexed by descriptor, grown on demand: the kernel hands out the lowest
    // free number, so the vector is about as long as the most connections
    // open at once, and finding one is an index, not a tree search. Null:
    // no connection on that number.
    std::vector<std::unique_ptr<iolab::Connection>> connections_;
    iolab::TimeoutSweep sweep_;  // finds the connections whose client kept them waiting too long
    // Connections closed during this round, destroyed when it ends (stage07).
    std::vector<std::unique_ptr<iolab::Connection>> closed_;
    iolab::Fd epoll_;
    std::vector<std::uint32_t> registered_;  // by descriptor; 0: not in the epoll set
};

Loop::Loop(iolab::Fd listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts,
           std::size_t max_connections)
    : listener_(std::move(listener)),
      wake_on_stop_(listener_.get()),
      max_connections_(max_connections),
      root_(root),
      sweep_(timeouts),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_) throw std::system_error(errno, std::system_category(), "epoll_create1");
    watch(listener_.get(), iolab::Interest::read);
}

void Loop::run() {
    // Takes whoever arrived before the loop started, and so reserves this
    // thread's spare descriptor (common/net.cpp: one per thread) now, while
    // the descriptor table still has room for it.
    accept_all();
    // The batch starts small and doubles whenever a call fills it, up to
    // max_batch (stage07's Server::run()).
    constexpr std::size_t max_batch = 64 * 1024;
    std::vector<epoll_event> events(64);
    while (!iolab::stop_requested()) {
        // Level-triggered, as stage07's default. The wait is this thread's
        // alone: another loop's ready sockets never wake it.
        int ready = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                 sweep_.wait_ms());
        if (ready < 0) {
            if (errno == EINTR) continue;  // a signal: the loop condition sees the stop
            throw std::system_error(errno, std::system_category(), "epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener_.get())
                accept_all();
            else
                serve(fd);
        }
        if (static_cast<std::size_t>(ready) == events.size() && events.size() < max_batch)
            events.resize(events.size() * 2);
        for (int fd : sweep_.expired(connections_))
            close_connection(fd);
        closed_.clear();
    }
}

// Accepts every connection waiting in this loop's backlog. The kernel put
// them there by hash; the other loops have backlogs of their own.
void Loop::accept_all() {
    for (;;) {
        iolab::Accepted accepted = iolab::accept_connection(listener_.get());
        // Out of descriptors: accept_connection() has already answered that
        // newcomer `ERR 503 busy` and closed it. Go on with the next one.
        if (accepted.error == EMFILE || accepted.error == ENFILE) continue;
        if (!accepted.socket) return;  // EAGAIN: the backlog is empty (EINVAL: stopping)
        // Our share of the descriptor table is used up: refuse before
        // EMFILE does it for us, so that no loop runs the table dry under
        // another's feet (connection_share()).
        if (open_ >= max_connections_) {
            iolab::refuse_busy(std::move(accepted.socket));
            continue;
        }
        int fd = accepted.socket.get();
        iolab::set_nonblocking(fd);
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] =
            std::make_unique<iolab::Connection>(std::move(accepted.socket), root_, drain_);
        ++open_;
        watch(fd, iolab::Interest::read);
    }
}

void Loop::serve(int fd) {
    if (static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd])
        return;  // closed earlier in this round
    iolab::Interest interest = connections_[fd]->advance();
    if (interest == iolab::Interest::close)
        close_connection(fd);
    else
        watch(fd, interest);
}

// Level-triggered: readable unless throttled, writable only while replies
// wait (stage07's Server::watch()).
void Loop::watch(int fd, iolab::Interest interest) {
    std::uint32_t events = 0;
    if (wants_read(interest)) events |= EPOLLIN | EPOLLRDHUP;
    if (wants_write(interest)) events |= EPOLLOUT;
    if (registered_.size() <= static_cast<std::size_t>(fd)) registered_.resize(fd + 1, 0);
    if (registered_[fd] == events) return;  // unchanged: spare the system call
    bool added = registered_[fd] == 0;      // never 0 once added: some Interest is watched
    registered_[fd] = events;
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), added ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) < 0)
        throw std::system_error(errno, std::system_category(), "epoll_ctl");
}

void Loop::unwatch(int fd) {
    registered_[fd] = 0;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void Loop::close_connection(int fd) {
    unwatch(fd);
    closed_.push_back(std::move(connections_[fd]));
    --open_;
    // Empty slots at the end go: the vector ends at the highest connection open.
    while (!connections_.empty() && !connections_.back())
        connections_.pop_back();
}

// The descriptor table is one per process: the loops share it, like it or
// not. Taking from it freely, one loop could grab the slot another had just
// freed by closing its spare descriptor to refuse a newcomer (common/net.cpp),
// leaving that loop with no spare, newcomers it cannot answer, and a readable
// listener to spin on. So each loop gets an equal share of what RLIMIT_NOFILE
// leaves, less three (its epoll instance, its spare, one to accept a newcomer
// it refuses), and refuses past it: nginx's worker_connections. (A file
// being sent takes a descriptor too; the spare still covers that.)
std::size_t connection_share(int loops) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) < 0)
        throw std::system_error(errno, std::system_category(), "getrlimit");
    auto open_now = static_cast<rlim_t>(
        std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {}));
    rlim_t left = limit.rlim_cur > open_now ? limit.rlim_cur - open_now : 0;
    rlim_t share = left / static_cast<rlim_t>(loops);
    return share > 4 ? static_cast<std::size_t>(share - 3) : 1;
}

// The cores this process may run on (taskset, cgroup cpusets), not the machine's.
int cores_available() {
    cpu_set_t cpus;
    if (::sched_getaffinity(0, sizeof cpus, &cpus) < 0) return 1;
    return CPU_COUNT(&cpus);
}

// One loop's thread. An unexpected failure there is kept for main() to
// report, and stops every loop: the process must not go on half alive.
void run_loop(Loop& loop, std::exception_ptr& failure, std::size_t index) {
    std::string name = "loop" + std::to_string(index);
    ::pthread_setname_np(::pthread_self(), name.c_str());  // as ps -L and top -H show it
    try {
        loop.run();
    } catch (...) {
        failure = std::current_exception();
        iolab::request_stop();
    }
}

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage11_reactor_per_core",
                           "One epoll loop per core, each with its own SO_REUSEPORT listener.",
                           9011);
    int threads = cores_available();
    cli.add_flag("--threads", "event loops, one thread each; the default is the cores available",
                 threads, 1, 256);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::install_signal_handlers();  // before any WakeOnStop (see common/stop.hpp)
        // One listener per loop, all on one port. With --port 0 the first
        // gets a free port and the others bind that same one: SO_REUSEPORT
        // lets them, as long as every socket of the group asked for it.
        std::vector<iolab::Fd> listeners;
        std::uint16_t port = options.port;
        for (int i = 0; i < threads; ++i) {
            listeners.push_back(iolab::listen_tcp(options.host, port, 4096, /*reuse_port=*/true));
            iolab::set_nonblocking(listeners.back().get());
            port = iolab::local_port(listeners.back().get());
        }
        int first_listener = listeners.front().get();  // owned by the first Loop from here
        std::size_t share = connection_share(threads);
        std::vector<std::unique_ptr<Loop>> loops;
        for (iolab::Fd& listener : listeners)
            loops.push_back(
                std::make_unique<Loop>(std::move(listener), root, options.timeouts, share));
        iolab::announce_listening(options, first_listener);  // once, every listener bound
        // Each thread writes only its own slot, read here after join().
        std::vector<std::exception_ptr> failures(loops.size());
        std::vector<std::thread> running;
        try {
            for (std::size_t i = 0; i < loops.size(); ++i)
                running.emplace_back(run_loop, std::ref(*loops[i]), std::ref(failures[i]), i);
        } catch (...) {
            iolab::request_stop();  // could not start them all: stop those that did start
            for (std::thread& thread : running)
                thread.join();
            throw;
        }
        // The main thread only waits, as nginx's master does. The stop
        // signals are left to the loops: a signal that lands in a thread
        // blocked in pthread_join() can be lost under ThreadSanitizer.
        sigset_t stop_signals;
        ::sigemptyset(&stop_signals);
        ::sigaddset(&stop_signals, SIGINT);
        ::sigaddset(&stop_signals, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
        for (std::thread& thread : running)
            thread.join();
        for (std::exception_ptr& failure : failures)
            if (failure) std::rethrow_exception(failure);
        iolab::print_summary("stage11_reactor_per_core");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
