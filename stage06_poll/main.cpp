// stage06_poll: one thread, many clients, waiting in poll().
//
// The model: stage05's, with an array of pollfd {fd, events, revents} instead
// of bitmaps: reused every round, and any descriptor number fits. The cost:
// still O(n) per round: the whole array goes in, the kernel checks every
// entry, and we walk every entry to find the ready ones.
//
//   run()              waits, then hands each ready descriptor to accept_all() or serve()
//   accept_all()       takes every client waiting in the backlog
//   serve()            lets one Connection do all it can, then passes on what it waits for
//   watch(), unwatch() the only code that tells the kernel what to wait for

#include <poll.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
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

class Server {
public:
    Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts);
    void run();  // serves until SIGINT or SIGTERM

private:
    void accept_all();
    void serve(int fd);
    void watch(int fd, iolab::Interest interest);
    void unwatch(int fd);
    void close_connection(int fd);

    int listener_;
    const iolab::DocRoot& root_;
    // Level-triggered: a read() that comes back short ends a connection's
    // turn, and the next wait reports what arrives after it (common/connection.hpp).
    iolab::Drain drain_ = iolab::Drain::until_short_read;
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
    // What poll() watches: one entry per descriptor, and where each one's
    // entry is, indexed by descriptor (no_slot: not watched).
    std::vector<pollfd> watched_;
    std::vector<std::size_t> slot_;
    static constexpr std::size_t no_slot = SIZE_MAX;
};

Server::Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts)
    : listener_(listener), root_(root), sweep_(timeouts) {
    watch(listener_, iolab::Interest::read);
}

void Server::run() {
    while (!iolab::stop_requested()) {
        // poll() writes its answer into each entry's revents and leaves events alone.
        // It returns when a descriptor is ready, or when the next timeout sweep is due.
        int ready = ::poll(watched_.data(), watched_.size(), sweep_.wait_ms());
        if (ready < 0) {
            if (errno == EINTR) continue;  // a signal: the loop condition sees the stop
            throw std::system_error(errno, std::system_category(), "poll");
        }
        // iolab:lab BEGIN scan
        // iolab:lab TODO the scan: walk the pollfd array; an entry with revents goes to
        // iolab:lab TODO accept_all() (the listener) or serve(). serve() may close the connection,
        // iolab:lab TODO and unwatch() then moves the last entry into this slot: look at it again.
        // iolab:lab STUB throw std::runtime_error("TODO(lab 06): the scan in Server::run()");
        // The O(n) scan: walk every entry to find the few that are ready.
        for (std::size_t i = 0; i < watched_.size();) {
            int fd = watched_[i].fd;
            if (watched_[i].revents != 0) {
                if (fd == listener_)
                    accept_all();
                else
                    serve(fd);
            }
            // If serve() closed this connection, unwatch() moved the last
            // entry into slot i: look at slot i again rather than skip it.
            if (i < watched_.size() && watched_[i].fd == fd) ++i;
        }
        // iolab:lab END scan
        // Once per sweep interval, not once per event: close the connections
        // whose client kept them waiting too long (common/timeouts.hpp).
        for (int fd : sweep_.expired(connections_))
            close_connection(fd);
        closed_.clear();
    }
}

// iolab:shared BEGIN accept-all
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
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] =
            std::make_unique<iolab::Connection>(std::move(accepted.socket), root_, drain_);
        watch(fd, iolab::Interest::read);
    }
}
// iolab:shared END accept-all

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

// Readable unless the connection is throttled (its replies are not being
// read: Interest::write); writable only while replies are waiting.
void Server::watch(int fd, iolab::Interest interest) {
    // iolab:lab BEGIN watch
    // iolab:lab TODO the pollfd array: give fd an entry (appended the first time, its slot
    // iolab:lab TODO remembered) whose events say what `interest` asks for (POLLIN, POLLOUT)
    // iolab:lab STUB static_cast<void>(fd), static_cast<void>(interest);
    // iolab:lab STUB throw std::runtime_error("TODO(lab 06): Server::watch()");
    short events = 0;
    if (wants_read(interest)) events |= POLLIN;
    if (wants_write(interest)) events |= POLLOUT;
    if (slot_.size() <= static_cast<std::size_t>(fd)) slot_.resize(fd + 1, no_slot);
    if (slot_[fd] == no_slot) {
        slot_[fd] = watched_.size();
        watched_.push_back(pollfd{fd, 0, 0});
    }
    watched_[slot_[fd]].events = events;
    // iolab:lab END watch
}

// Removes fd's entry in O(1) by moving the last entry into its slot; the
// array stays dense, and run() visits the moved entry when it reaches the slot.
void Server::unwatch(int fd) {
    // iolab:lab BEGIN unwatch
    // iolab:lab TODO the pollfd array stays dense: move the last entry into fd's slot, in O(1)
    // iolab:lab STUB static_cast<void>(fd);
    // iolab:lab STUB throw std::runtime_error("TODO(lab 06): Server::unwatch()");
    std::size_t slot = slot_[fd];
    slot_[fd] = no_slot;
    watched_[slot] = watched_.back();
    watched_.pop_back();
    if (slot < watched_.size()) slot_[watched_[slot].fd] = slot;
    // iolab:lab END unwatch
}

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
    iolab::CommandLine cli("stage06_poll",
                           "One thread multiplexing nonblocking sockets with poll().", 9006);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        iolab::set_nonblocking(listener.get());  // accept() returns EAGAIN instead of waiting
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());
        iolab::announce_listening(options, listener.get());

        Server server(listener.get(), root, options.timeouts);
        server.run();
        iolab::print_summary("stage06_poll");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
