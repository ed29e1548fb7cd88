// stage01_blocking: one client at a time.
//
// The simplest server there is. accept() a connection, serve it to the end
// with blocking read() and write() calls, then accept the next one. While the
// server waits on one client, every other client waits in the kernel's
// accept queue. In the notes' kettle picture: you put the kettle on and
// stand watching it until it boils, and nobody else gets served meanwhile.
//
// File bodies go the long way: read() from the page cache into a user
// buffer, then write() from it into the socket buffer (two CPU copies, four
// context switches per chunk). stage08 removes the user buffer.

#include <optional>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"

namespace {

// Serves one client until it leaves, says QUIT, or the server is stopping.
void serve(iolab::Fd client, const iolab::DocRoot& root) {
    iolab::WakeOnStop wake(client.get());  // a stop must not wait for this client to speak
    iolab::Session session(root);
    iolab::Outbox outbox;
    char buffer[16 * 1024];
    for (;;) {
        // Answer every complete request already received, in order. On a
        // blocking socket flush() returns only when all is written (ok) or
        // the client is gone.
        while (std::optional<iolab::Response> response = session.next_response()) {
            outbox.push(std::move(*response));
            if (outbox.flush(client.get()) != iolab::Io::ok) return;
        }
        if (session.finished()) break;

        // Block until the client sends more, closes, or resets.
        iolab::IoResult got = iolab::read_some(client.get(), buffer);
        if (got.status == iolab::Io::eof)
            session.feed_eof();
        else if (got.status == iolab::Io::ok)
            session.feed({buffer, got.bytes});
        else
            return;  // reset, or interrupted by SIGTERM
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
            if (accepted.socket) serve(std::move(accepted.socket), root);
        }
        iolab::print_summary("stage01_blocking");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
