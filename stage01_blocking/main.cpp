// stage01_blocking: one client at a time.
//
// The model: accept() a client, serve it to the end with blocking read() and
// write(), then accept the next; everyone else waits in the accept queue. The
// cost: one slow client holds the whole server, for as long as its timeout
// allows (--request-timeout, --idle-timeout, --send-timeout). File bodies go
// through a user buffer, read() then write(): stage08 removes that copy.
//
//   serve()  one client, start to end: answer what arrived, then block in read()
//   main()   accept, serve, repeat

#include <optional>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

// iolab:lab BEGIN serve
// iolab:lab TODO serve(): until the client leaves, says QUIT, runs out of time or the server
// iolab:lab TODO stops, read what it sends (iolab::read_some) into a Session, and write each
// iolab:lab TODO reply (an Outbox) before reading more; then close gently
// iolab:lab STUB void serve(iolab::Fd client, const iolab::DocRoot& root, const iolab::Timeouts&) {
// iolab:lab STUB     static_cast<void>(client), static_cast<void>(root);
// iolab:lab STUB     throw std::runtime_error("TODO(lab 01): serve()");
// iolab:lab STUB }
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
// iolab:lab END serve

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
