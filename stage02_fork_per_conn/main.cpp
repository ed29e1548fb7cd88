// stage02_fork_per_conn: a process per connection.
//
// The model: the parent only accepts; for each client it fork()s a child that
// runs stage01's blocking serve() and exits, and the scheduler multiplexes.
// The cost: a fork() per connection (page tables, descriptor table,
// copy-on-write faults) and a process per client, each to be reaped.
//
//   serve()          stage01's, unchanged
//   reap_children()  the SIGCHLD handler: collects every child that exited
//   main()           accept, fork, each side closes the copy it does not need

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>
#include <vector>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

// iolab:shared BEGIN blocking-serve
// Serves one client until it leaves, says QUIT, runs out of time, or the
// server is stopping.
void serve(iolab::Fd client, const iolab::DocRoot& root, const iolab::Timeouts& timeouts) {
    iolab::WakeOnStop wake(client.get());  // a stop must not wait for this client to speak
    iolab::SocketTimeouts deadlines(client.get(), timeouts);  // SO_SNDTIMEO, SO_RCVTIMEO
    iolab::Session session(root);
    iolab::Outbox outbox;
    char buffer[16 * 1024];
    for (;;) {
        // Answer every complete request already received, in order. On a
        // blocking socket flush() returns only when all is written (ok), the
        // client is gone (closed), or it read nothing for --send-timeout
        // (would_block): then reset, do not leave the kernel our unsent bytes.
        while (std::optional<iolab::Response> response = session.next_response()) {
            outbox.push(std::move(*response));
            iolab::Io sent = outbox.flush(client.get());
            if (sent == iolab::Io::would_block) iolab::reset_on_close(client.get());
            if (sent != iolab::Io::ok) return;
        }
        if (session.finished()) break;

        // Block until the client sends more, closes, resets, or runs out of
        // time (--idle-timeout, or --request-timeout once a request has begun).
        if (!deadlines.before_read(session)) return;
        iolab::IoResult got = iolab::read_some(client.get(), buffer);
        if (got.status == iolab::Io::eof)
            session.feed_eof();
        else if (got.status == iolab::Io::ok)
            session.feed({buffer, got.bytes});
        else
            return;  // reset, timed out (would_block), or interrupted by SIGTERM
    }
    iolab::close_gently(std::move(client));
}
// iolab:shared END blocking-serve

// The children still running, so that a stop can be passed on to each of
// them by pid (kill(0, ...) would also hit whoever shares our process group).
// The SIGCHLD handler reaps children and marks their entries 0; main()
// changes the vector only while the signals are blocked, so the two never overlap.
std::vector<pid_t> children;

// SIGCHLD: collect every child that has exited, so none stays a zombie. One
// signal may stand for several exits (signals do not queue), hence the loop.
void reap_children(int) {
    // iolab:lab BEGIN reap
    // iolab:lab TODO reaping: collect every child that has exited (waitpid, WNOHANG, in a loop:
    // iolab:lab TODO one SIGCHLD may stand for several exits), mark its entry in `children` 0,
    // iolab:lab TODO and leave errno as you found it
    int saved_errno = errno;  // we may have interrupted code about to read errno
    pid_t pid;
    while ((pid = ::waitpid(-1, nullptr, WNOHANG)) > 0)
        std::replace(children.begin(), children.end(), pid, 0);
    errno = saved_errno;
    // iolab:lab END reap
}

// Blocks (SIG_BLOCK) or unblocks (SIG_UNBLOCK) SIGCHLD, SIGINT and SIGTERM:
// a blocked signal waits, pending, until it is unblocked.
void block_signals(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::sigprocmask(how, &set, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage02_fork_per_conn",
                           "A process per connection: fork() after accept(), SIGCHLD reaping.",
                           9002);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());
        struct sigaction on_child {};
        on_child.sa_handler = reap_children;
        sigemptyset(&on_child.sa_mask);
        on_child.sa_flags = SA_RESTART | SA_NOCLDSTOP;  // an accept() it interrupts goes on
        if (::sigaction(SIGCHLD, &on_child, nullptr) < 0)
            throw std::system_error(errno, std::system_category(), "sigaction(SIGCHLD)");
        iolab::announce_listening(options, listener.get());

        while (!iolab::stop_requested()) {
            // Blocks until a client connects. Returns no socket when we are
            // stopping, or when the client was refused for lack of descriptors.
            iolab::Accepted accepted = iolab::accept_connection(listener.get());
            if (!accepted.socket) continue;

            // iolab:lab BEGIN fork
            // iolab:lab TODO forking: a child per client (fork), which forgets the listener,
            // iolab:lab TODO serves its client and _exit()s; the parent records the child's pid in
            // iolab:lab TODO `children` (with SIGCHLD blocked meanwhile) and keeps no copy of
            // iolab:lab TODO the socket. Until then the handout serves one client at a time.
            // iolab:lab STUB serve(std::move(accepted.socket), root, options.timeouts);
            block_signals(SIG_BLOCK);
            pid_t pid = ::fork();
            if (pid == 0) {
                // The child. Forget the listener before a stop can run the
                // handler (signals are still blocked): shutdown() acts on
                // the socket itself, which we share with the parent, and
                // would stop its accept() too. On a stop, serve()'s
                // WakeOnStop shuts down our client instead.
                iolab::shut_down_on_stop(-1);
                listener.reset();  // our copy of the listener
                block_signals(SIG_UNBLOCK);
                // Serve, then leave without the parent's exit-time code
                // (_exit: no atexit handlers, no second flush of stdio buffers).
                serve(std::move(accepted.socket), root, options.timeouts);
                ::_exit(0);
            }
            if (pid < 0) {
                iolab::log_warn("fork failed: ", std::system_category().message(errno));
                iolab::refuse_busy(std::move(accepted.socket));
            } else {
                std::erase(children, 0);
                children.push_back(pid);
            }
            block_signals(SIG_UNBLOCK);
            // The parent's copy of the client socket closes here, as
            // `accepted` goes out of scope: only the child holds it now.
            // iolab:lab END fork
        }

        // Stopping: pass SIGTERM on to every child, then wait for them all.
        // With SIGCHLD blocked no pid in the list can be reaped (and reused
        // by another process) before we signal it.
        block_signals(SIG_BLOCK);
        for (pid_t child : children)
            if (child > 0) ::kill(child, SIGTERM);
        while (::waitpid(-1, nullptr, 0) > 0) {
        }
        iolab::print_summary("stage02_fork_per_conn");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
