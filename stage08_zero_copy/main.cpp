// stage08_zero_copy: stage07's epoll loop; file bodies skip the user buffer.
//
// The model: stage07's, unchanged; only how a body leaves differs (--copy,
// copy_paths.hpp): sendfile (the default), splice, mmap, read (stage07's) or
// direct (O_DIRECT, past the page cache). What it saves, a CPU copy per byte,
// shows in the server's CPU seconds per GB, not in loopback throughput.
//
//   run()              waits, then hands each ready descriptor to accept_all() or serve()
//   accept_all()       takes every client waiting in the backlog
//   serve()            lets one Connection do all it can, then passes on what it waits for
//   watch(), unwatch() the only code that tells the kernel what to wait for

#include <sys/epoll.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli.hpp"
#include "connection.hpp"
#include "copy_paths.hpp"
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

class Server {
public:
    Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts,
           bool edge_triggered, std::string copy, int unsent_limit);
    void run();  // serves until SIGINT or SIGTERM

private:
    void accept_all();
    void serve(int fd);
    void watch(int fd, iolab::Interest interest);
    void unwatch(int fd);
    void close_connection(int fd);

    int listener_;
    const iolab::DocRoot& root_;
    // Edge-triggered must read each turn until EAGAIN; level-triggered may
    // stop at a read() that comes back short (common/connection.hpp).
    iolab::Drain drain_;
    // Indexed by descriptor, grown on demand: the kernel hands out the lowest
    // free number, so the vector is about as long as the most connections
    // open at once, and finding one is an index, not a tree search. Null:
    // no connection on that number.
    std::vector<std::unique_ptr<iolab::Connection>> connections_;
    iolab::TimeoutSweep sweep_;  // finds the connections whose client kept them waiting too long
    // Connections closed during this round, destroyed when it ends: until
    // then their descriptor numbers stay taken, so no new connection can get
    // a number that this round's results may still mention.
    std::vector<std::unique_ptr<iolab::Connection>> closed_;
    // What epoll watches is kept in the kernel. We remember what we asked
    // for each descriptor only to skip epoll_ctl() calls that change nothing.
    iolab::Fd epoll_;
    bool edge_triggered_;
    std::string copy_;                       // --copy: how file bodies are sent
    int unsent_limit_;                       // --unsent-limit: see copy_paths::limit_unsent()
    std::vector<std::uint32_t> registered_;  // by descriptor; 0: not in the epoll set
};

Server::Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts,
               bool edge_triggered, std::string copy, int unsent_limit)
    : listener_(listener),
      root_(root),
      drain_(edge_triggered ? iolab::Drain::until_eagain : iolab::Drain::until_short_read),
      sweep_(timeouts),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      edge_triggered_(edge_triggered),
      copy_(std::move(copy)),
      unsent_limit_(unsent_limit) {
    if (!epoll_) throw std::system_error(errno, std::system_category(), "epoll_create1");
    watch(listener_, iolab::Interest::read);
}

// iolab:shared BEGIN epoll-run
void Server::run() {
    // The batch: as many ready descriptors as one epoll_wait() may copy out.
    // It starts small and doubles whenever a call fills it, up to max_batch,
    // so that under load one call takes the whole ready list.
    constexpr std::size_t max_batch = 64 * 1024;
    std::vector<epoll_event> events(64);
    while (!iolab::stop_requested()) {
        // epoll_wait() copies out the ready list only (up to events.size()
        // entries; the rest stay on it for the next call). It returns when a
        // descriptor is ready, or when the next timeout sweep is due.
        int ready = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                 sweep_.wait_ms());
        if (ready < 0) {
            if (errno == EINTR) continue;  // a signal: the loop condition sees the stop
            throw std::system_error(errno, std::system_category(), "epoll_wait");
        }
        // No scan: every entry is a ready descriptor. EPOLLHUP, EPOLLERR and
        // EPOLLRDHUP need no case of their own: advance() meets the EOF or
        // the error in its read() or write() and answers Interest::close.
        // An entry may name a connection closed earlier in this batch (here
        // only by its own event; the timeout sweep runs after the batch),
        // and accept() in this batch could have given its number to a
        // newcomer, which would then get the stale event. closed_ keeps the
        // old descriptor open until the batch ends: serve() just finds it gone.
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener_)
                accept_all();
            else
                serve(fd);
        }
        // Full: more may have been ready than the batch holds. Grow it.
        if (static_cast<std::size_t>(ready) == events.size() && events.size() < max_batch)
            events.resize(events.size() * 2);
        // Once per sweep interval, not once per event: close the connections
        // whose client kept them waiting too long (common/timeouts.hpp).
        for (int fd : sweep_.expired(connections_))
            close_connection(fd);
        closed_.clear();
    }
}
// iolab:shared END epoll-run

// Accepts every connection waiting in the backlog. The listener is
// nonblocking, so accept() says EAGAIN instead of waiting when none is left.
void Server::accept_all() {
    for (;;) {
        iolab::Accepted accepted = iolab::accept_connection(listener_);
        // Out of descriptors: accept_connection() has already answered that
        // newcomer `ERR 503 busy` and closed it. Go on with the next one.
        if (accepted.error == EMFILE || accepted.error == ENFILE) continue;
        if (!accepted.socket) return;  // EAGAIN: the backlog is empty (EINVAL: stopping)
        int fd = accepted.socket.get();
        // On Linux an accepted socket does not inherit O_NONBLOCK from the
        // listener (accept(2), NOTES): set it on each one.
        iolab::set_nonblocking(fd);
        copy_paths::limit_unsent(fd, unsent_limit_);
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] = std::make_unique<iolab::Connection>(
            std::move(accepted.socket), root_, drain_, copy_paths::make_sender(copy_));
        watch(fd, iolab::Interest::read);
    }
}

// iolab:shared BEGIN serve
// Lets one connection read, parse and write all it can without blocking,
// then turns the answer into what the loop waits for on its behalf.
void Server::serve(int fd) {
    if (static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd])
        return;  // closed earlier in this round
    iolab::Interest interest = connections_[fd]->advance();
    if (interest == iolab::Interest::close)
        close_connection(fd);
    else
        watch(fd, interest);
}
// iolab:shared END serve

// iolab:shared BEGIN epoll-watch
// Level-triggered: readable unless the connection is throttled (its replies
// are not being read: Interest::write); writable only while replies are
// waiting. Anything more would be reported again and again: a busy loop.
// Edge-triggered: one registration for everything, never changed. An edge
// comes only when new bytes arrive or buffer space frees up, so watching
// both directions costs few wake-ups, and advance() reads and writes until
// EAGAIN (drain_), so it never leaves behind work whose edge has already passed.
void Server::watch(int fd, iolab::Interest interest) {
    std::uint32_t events = 0;
    if (wants_read(interest)) events |= EPOLLIN | EPOLLRDHUP;
    if (wants_write(interest)) events |= EPOLLOUT;
    if (edge_triggered_) events = EPOLLIN | EPOLLRDHUP | EPOLLOUT | EPOLLET;
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

void Server::unwatch(int fd) {
    registered_[fd] = 0;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}
// iolab:shared END epoll-watch

// iolab:shared BEGIN close-connection
void Server::close_connection(int fd) {
    unwatch(fd);
    closed_.push_back(std::move(connections_[fd]));
    // The vector ends at the highest connection still open (stage05's
    // select() takes that as its nfds).
    while (!connections_.empty() && !connections_.back())
        connections_.pop_back();
}
// iolab:shared END close-connection

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage08_zero_copy",
                           "stage07's epoll loop, sending file bodies without a user buffer.",
                           9008);
    std::string trigger = "level";
    cli.add_flag("--trigger", "how epoll_wait() reports a ready descriptor", trigger,
                 {"level", "edge"});
    std::string copy = "sendfile";
    cli.add_flag("--copy", "how file bodies reach the socket", copy,
                 {"sendfile", "splice", "mmap", "read", "direct"});
    int unsent_limit = copy_paths::default_unsent_limit;
    cli.add_flag("--unsent-limit",
                 "bytes of replies that may wait unsent in the kernel (0: no limit)", unsent_limit,
                 0, 1 << 30);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        iolab::set_nonblocking(listener.get());  // accept() returns EAGAIN instead of waiting
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());
        iolab::announce_listening(options, listener.get());

        Server server(listener.get(), root, options.timeouts, trigger == "edge", copy,
                      unsent_limit);
        server.run();
        iolab::print_summary("stage08_zero_copy");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
