// stage09_signal_io: one thread, many clients, told by signals.
//
// The model: each socket raises a queued real-time signal naming it (F_SETOWN,
// F_SETSIG, O_ASYNC); the signals stay blocked, and sigtimedwait() takes them
// in turn. The cost: a signal per event, and a bounded queue: past it a bare
// SIGIO says events were lost, and recover() tries every connection.
//
//   run()              waits, then hands each ready descriptor to accept_all() or serve()
//   accept_all()       takes every client waiting in the backlog
//   serve()            lets one Connection do all it can, then passes on what it waits for
//   watch(), unwatch() the only code that tells the kernel what to wait for

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
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

// Whether an event (a signal's si_band) is one the connection waits for. The
// kernel cannot be told: a socket with O_ASYNC signals every event.
bool wanted(iolab::Interest interest, long band) {
    if (band & (POLLERR | POLLHUP)) return true;
    return ((band & POLLIN) && wants_read(interest)) || ((band & POLLOUT) && wants_write(interest));
}

class Server {
public:
    Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts);
    void run();  // serves until SIGINT or SIGTERM

private:
    void accept_all();
    void serve(int fd);
    void recover();
    void watch(int fd, iolab::Interest interest);
    void unwatch(int fd);
    void close_connection(int fd);

    int listener_;
    const iolab::DocRoot& root_;
    // A socket signals when bytes arrive, not while they wait: edge-like, so
    // each turn reads until EAGAIN (common/connection.hpp).
    iolab::Drain drain_ = iolab::Drain::until_eagain;
    // Indexed by descriptor, grown on demand: the kernel hands out the lowest
    // free number, so the vector is about as long as the most connections
    // open at once, and finding one is an index, not a tree search. Null:
    // no connection on that number.
    std::vector<std::unique_ptr<iolab::Connection>> connections_;
    iolab::TimeoutSweep sweep_;  // finds the connections whose client kept them waiting too long
    // Connections closed during this round, destroyed when it ends, as in
    // stages 05-08. It protects less here: a queued signal outlives the
    // round, and may name a number a newcomer has been given since (serve()).
    std::vector<std::unique_ptr<iolab::Connection>> closed_;
    // The signals we wait for: io_signal_ (one per event, queued), SIGIO
    // (the queue overflowed) and the stop signals. All are blocked, so none
    // runs a handler or kills us; sigtimedwait() takes them in turn.
    int io_signal_;
    sigset_t waited_;
    // What each descriptor waits for, indexed by descriptor; nothing: not watched.
    std::vector<std::optional<iolab::Interest>> interest_;
};

Server::Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts)
    : listener_(listener), root_(root), sweep_(timeouts), io_signal_(SIGRTMIN) {
    sigemptyset(&waited_);
    for (int signal : {io_signal_, SIGIO, SIGINT, SIGTERM})
        sigaddset(&waited_, signal);
    // Blocked before any socket may raise one: a real-time signal or SIGIO
    // that is neither blocked nor handled ends the process (signal(7)).
    if (::sigprocmask(SIG_BLOCK, &waited_, nullptr) < 0)
        throw std::system_error(errno, std::system_category(), "sigprocmask");
    watch(listener_, iolab::Interest::read);
    accept_all();  // clients that connected before watch() raised no signal
}

void Server::run() {
    while (!iolab::stop_requested()) {
        // One signal per call: the oldest of the lowest-numbered pending
        // signal. It returns when a signal is pending, or when the next
        // timeout sweep is due (EAGAIN).
        siginfo_t info{};
        int wait_ms = sweep_.wait_ms();
        timespec timeout{wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        int signal = ::sigtimedwait(&waited_, &info, wait_ms < 0 ? nullptr : &timeout);
        if (signal < 0 && errno == EINTR) continue;  // stopped and continued (signal(7))
        if (signal < 0 && errno != EAGAIN)
            throw std::system_error(errno, std::system_category(), "sigtimedwait");
        if (signal == SIGINT || signal == SIGTERM) {
            iolab::request_stop();  // as the handler would have (common/stop.hpp)
        } else if (signal == SIGIO) {
            recover();  // the queue overflowed: events were lost, nobody knows whose
        } else if (signal == io_signal_) {
            // si_fd names the descriptor, si_band what happened. POLLHUP and
            // POLLERR always go to serve(): advance()'s read() meets the error.
            int fd = info.si_fd;
            std::optional<iolab::Interest> interest;
            if (fd >= 0 && static_cast<std::size_t>(fd) < interest_.size())
                interest = interest_[fd];
            if (fd == listener_)
                accept_all();
            else if (interest && wanted(*interest, info.si_band))
                serve(fd);
        }
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
        // On Linux an accepted socket inherits neither O_NONBLOCK nor O_ASYNC
        // (accept(2), NOTES) nor the owner from the listener: set them on each one.
        iolab::set_nonblocking(fd);
        if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(fd + 1);
        connections_[fd] =
            std::make_unique<iolab::Connection>(std::move(accepted.socket), root_, drain_);
        watch(fd, iolab::Interest::read);
        // Whatever the client sent before watch() raised no signal, and none
        // will come for it: look now, as after every arming.
        serve(fd);
    }
}

// Lets one connection read, parse and write all it can without blocking,
// then turns the answer into what the loop waits for on its behalf.
void Server::serve(int fd) {
    // A signal may name a connection closed since, or a newcomer given its
    // number: a signal is a hint, and a wasted advance() just finds EAGAIN.
    if (static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
    iolab::Interest interest = connections_[fd]->advance();
    if (interest == iolab::Interest::close)
        close_connection(fd);
    else
        watch(fd, interest);
}

// SIGIO instead of io_signal_: the queue was full, and the kernel dropped a
// real-time signal (fs/fcntl.c, send_sigio_to_task()). The signals still
// queued are thrown away in one go (setting a pending signal's action to
// SIG_IGN discards it, sigaction(2)): the sweep below covers them all. Then
// every descriptor is tried: O(connections), the price of not knowing.
void Server::recover() {
    struct sigaction action {};
    action.sa_handler = SIG_IGN;
    ::sigaction(io_signal_, &action, nullptr);
    action.sa_handler = SIG_DFL;  // blocked, so its default never ends us
    ::sigaction(io_signal_, &action, nullptr);
    accept_all();
    std::vector<int> fds;
    for (std::size_t fd = 0; fd < connections_.size(); ++fd)
        if (connections_[fd]) fds.push_back(static_cast<int>(fd));
    for (int fd : fds)
        serve(fd);
}

// The first time a descriptor is watched it is armed: F_SETOWN makes us its
// owner, F_SETSIG makes its signal the queued io_signal_ with si_fd and
// si_band, O_ASYNC switches it on (fcntl(2)). That is all the kernel can be
// told: it signals every event, so a change of interest is only noted here.
// No writable signal comes for space that was there already: the kernel
// sends POLLOUT only after a write met a full buffer (sk_stream_write_space),
// so advance() always writes at once, and waits only after an EAGAIN.
void Server::watch(int fd, iolab::Interest interest) {
    if (interest_.size() <= static_cast<std::size_t>(fd)) interest_.resize(fd + 1);
    bool added = !interest_[fd];
    interest_[fd] = interest;
    if (!added) return;  // already armed: spare the system calls
    int flags = ::fcntl(fd, F_GETFL);
    if (::fcntl(fd, F_SETOWN, ::getpid()) < 0 || ::fcntl(fd, F_SETSIG, io_signal_) < 0 ||
        flags < 0 || ::fcntl(fd, F_SETFL, flags | O_ASYNC) < 0)
        throw std::system_error(errno, std::system_category(), "fcntl(O_ASYNC)");
}

// Nothing to tell the kernel: closing the descriptor takes it off the
// socket's list of owners to signal. Signals already queued stay queued.
void Server::unwatch(int fd) {
    interest_[fd].reset();
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
    iolab::CommandLine cli("stage09_signal_io",
                           "One thread told by real-time signals which socket is ready.", 9009);
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
        iolab::print_summary("stage09_signal_io");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
