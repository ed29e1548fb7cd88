// stage05_select: one thread, many clients, waiting in select().
//
// The model: the thread sleeps in one select() naming every descriptor it
// watches, and wakes when one is ready. The cost: O(n) per round (the fd_sets
// go in and come back whole, and both sides scan every bit), and no
// descriptor past FD_SETSIZE (1024).
//
//   run()              waits, then hands each ready descriptor to accept_all() or serve()
//   accept_all()       takes every client waiting in the backlog
//   serve()            lets one Connection do all it can, then passes on what it waits for
//   watch(), unwatch() the only code that tells the kernel what to wait for

#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
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
    // What select() watches: one bit per descriptor number, for reading and for writing.
    fd_set want_read_;
    fd_set want_write_;
};

Server::Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts)
    : listener_(listener), root_(root), sweep_(timeouts) {
    if (listener_ >= FD_SETSIZE) throw std::runtime_error("listener descriptor past FD_SETSIZE");
    FD_ZERO(&want_read_);
    FD_ZERO(&want_write_);
    watch(listener_, iolab::Interest::read);
}

void Server::run() {
    while (!iolab::stop_requested()) {
        // select() overwrites the sets it is given with its answer: hand it copies.
        fd_set readable = want_read_;
        fd_set writable = want_write_;
        // connections_ ends at the highest connection open (close_connection()).
        int max_fd = std::max(listener_, static_cast<int>(connections_.size()) - 1);
        // It returns when a descriptor is ready, or when the next timeout sweep is due.
        int wait_ms = sweep_.wait_ms();  // -1: every timeout is off, wait for ever
        timeval timeout{wait_ms / 1000, wait_ms % 1000 * 1000};
        int ready =
            ::select(max_fd + 1, &readable, &writable, nullptr, wait_ms < 0 ? nullptr : &timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;  // a signal: the loop condition sees the stop
            throw std::system_error(errno, std::system_category(), "select");
        }
        // iolab:lab BEGIN scan
        // iolab:lab TODO the scan: test each descriptor number up to max_fd in the two
        // iolab:lab TODO answers; hand the listener to accept_all(), any other to serve()
        // iolab:lab STUB throw std::runtime_error("TODO(lab 05): the scan in Server::run()");
        // The O(n) scan: test every descriptor number to find the few that are ready.
        for (int fd = 0; fd <= max_fd; ++fd) {
            if (!FD_ISSET(fd, &readable) && !FD_ISSET(fd, &writable)) continue;
            if (fd == listener_)
                accept_all();
            else
                serve(fd);
        }
        // iolab:lab END scan
        // Once per sweep interval, not once per event: close the connections
        // whose client kept them waiting too long (common/timeouts.hpp).
        for (int fd : sweep_.expired(connections_))
            close_connection(fd);
        closed_.clear();
    }
}

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
        // iolab:lab BEGIN guard
        // iolab:lab TODO the FD_SETSIZE guard: a socket whose number an fd_set cannot hold
        // iolab:lab TODO is refused (iolab::refuse_busy), never handed to FD_SET()
        if (fd >= FD_SETSIZE) {
            // FD_SET() on this number would write past the end of the fd_set.
            iolab::refuse_busy(std::move(accepted.socket));
            continue;
        }
        // iolab:lab END guard
        // On Linux an accepted socket does not inherit O_NONBLOCK from the
        // listener (accept(2), NOTES): set it on each one.
        iolab::set_nonblocking(fd);
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] =
            std::make_unique<iolab::Connection>(std::move(accepted.socket), root_, drain_);
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

// Readable unless the connection is throttled (its replies are not being
// read: Interest::write); writable only while replies are waiting.
void Server::watch(int fd, iolab::Interest interest) {
    // iolab:lab BEGIN watch
    // iolab:lab TODO the fd_set bookkeeping: fd's bits in want_read_ and want_write_
    // iolab:lab TODO say exactly what `interest` asks for (FD_SET, FD_CLR)
    // iolab:lab STUB static_cast<void>(fd), static_cast<void>(interest);
    // iolab:lab STUB throw std::runtime_error("TODO(lab 05): Server::watch()");
    FD_CLR(fd, &want_read_);
    FD_CLR(fd, &want_write_);
    if (wants_read(interest)) FD_SET(fd, &want_read_);
    if (wants_write(interest)) FD_SET(fd, &want_write_);
    // iolab:lab END watch
}

void Server::unwatch(int fd) {
    // iolab:lab BEGIN unwatch
    // iolab:lab TODO the fd_set bookkeeping: fd is watched for nothing any more
    // iolab:lab STUB static_cast<void>(fd);
    // iolab:lab STUB throw std::runtime_error("TODO(lab 05): Server::unwatch()");
    FD_CLR(fd, &want_read_);
    FD_CLR(fd, &want_write_);
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
    iolab::CommandLine cli("stage05_select",
                           "One thread multiplexing nonblocking sockets with select().", 9005);
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
        iolab::print_summary("stage05_select");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
