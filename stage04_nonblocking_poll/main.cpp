// stage04_nonblocking_poll: one thread, nonblocking sockets, busy polling.
//
// The model: every socket is O_NONBLOCK, so no call waits (EAGAIN: "not yet"),
// and one thread tries the listener and every connection in turn, round after
// round; a Connection keeps each client's state between visits. The cost: the
// rounds never stop, so an idle server burns a whole core.
//
//   run()         tries the listener and every connection, round after round
//   accept_all()  takes every client waiting in the backlog
//   serve()       lets one Connection do all it can without blocking

#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include "cli.hpp"
#include "connection.hpp"
#include "log.hpp"
#include "net.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

class Server {
public:
    Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts);
    void run();  // serves until SIGINT or SIGTERM

private:
    void accept_all();
    void serve(int fd);

    int listener_;
    const iolab::DocRoot& root_;
    // No readiness to report bytes left behind: read each turn until EAGAIN
    // (common/connection.hpp). The next round comes at once anyway.
    iolab::Drain drain_ = iolab::Drain::until_eagain;
    // Indexed by descriptor, grown on demand: the kernel hands out the lowest
    // free number, so the vector is about as long as the most connections
    // open at once, and finding one is an index, not a tree search. Null:
    // no connection on that number.
    std::vector<std::unique_ptr<iolab::Connection>> connections_;
    iolab::TimeoutSweep sweep_;  // finds the connections whose client kept them waiting too long
};

Server::Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts)
    : listener_(listener), root_(root), sweep_(timeouts) {}

void Server::run() {
    while (!iolab::stop_requested()) {
        // iolab:lab BEGIN spin
        // iolab:lab TODO the spin loop: each round, accept every waiting client (accept_all()),
        // iolab:lab TODO then give every connection a turn (serve()), ready or not; serve() may
        // iolab:lab TODO close the one it is given. Then close those the timeout sweep names.
        // iolab:lab STUB return;
        // No waiting anywhere: try the listener, then every connection, ready
        // or not, then start again at once. Each try that finds nothing to
        // do is still a system call that returns EAGAIN.
        accept_all();
        for (std::size_t fd = 0; fd < connections_.size(); ++fd)
            if (connections_[fd]) serve(static_cast<int>(fd));
        // Every round also asks the clock, but only once per sweep interval
        // does it walk the connections for those whose client kept them
        // waiting too long, and close them (common/timeouts.hpp).
        for (int fd : sweep_.expired(connections_))
            connections_[fd].reset();
        // Empty slots at the end would cost every round a look: drop them.
        while (!connections_.empty() && !connections_.back())
            connections_.pop_back();
        // iolab:lab END spin
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
        // On Linux an accepted socket does not inherit O_NONBLOCK from the
        // listener (accept(2), NOTES): set it on each one.
        iolab::set_nonblocking(fd);
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] =
            std::make_unique<iolab::Connection>(std::move(accepted.socket), root_, drain_);
    }
}

// Lets one connection read, parse and write all it can without blocking:
// advance() returns at the first EAGAIN. What it would like to wait for
// next is ignored: we do not wait, we come back in a few microseconds anyway.
void Server::serve(int fd) {
    if (connections_[fd]->advance() == iolab::Interest::close)
        connections_[fd].reset();  // destroys the Connection: closes the socket
}

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage04_nonblocking_poll",
                           "One thread busy-polling nonblocking sockets (EAGAIN: not yet).", 9004);
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
        iolab::print_summary("stage04_nonblocking_poll");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
