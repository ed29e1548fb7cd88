// stage01_blocking: one client at a time.
//
// The simplest server there is. accept() a connection, serve it to the end
// with blocking read() and write() calls, then accept the next one. While the
// server waits on one client, every other client waits in the kernel's
// accept queue. In the notes' kettle picture: you put the kettle on and
// stand watching it until it boils, and nobody else gets served meanwhile.
// Only the timeouts bound how long: a client that trickles its request a
// byte at a time, says nothing, or stops reading holds the whole server for
// --request-timeout, --idle-timeout or --send-timeout seconds (30, 60, 30).
//
// File bodies go the long way: read() from the page cache into a user
// buffer, then write() from it into the socket buffer (two CPU copies, four
// user/kernel mode switches per chunk). stage08 removes the user buffer.

#include <optional>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage01_blocking",
                           "One client at a time: blocking accept(), read() and write().", 9001);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());
        iolab::announce_listening(options, listener.get());

        while (!iolab::stop_requested()) {
            // Blocks until a client connects. Returns no socket when we are
            // stopping, or when the client was refused for lack of descriptors.
            iolab::Accepted accepted = iolab::accept_connection(listener.get());
            if (accepted.socket) serve(std::move(accepted.socket), root, options.timeouts);
        }
        iolab::print_summary("stage01_blocking");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
