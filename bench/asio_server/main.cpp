// asio_server: the iolab protocol served by standalone asio, for comparison.
//
// Not a stage: a yardstick. It answers the same protocol through the same
// sans-I/O core (common/protocol.hpp) as the stages, but leaves the waiting
// to asio: one io_context (epoll underneath), one C++20 coroutine per
// connection that reads as if it were blocking code. The comparison runner
// measures it beside stage07 to show what a mature event loop adds or costs.
// asio is used nowhere else in iolab.
//
// Timeouts (--request-timeout, --idle-timeout, --send-timeout): each
// connection has a watchdog, a second coroutine on a steady_timer, raced
// against the conversation with `||`; whichever ends first cancels the other.
// asio keeps its timers in a heap ordered by expiry, so nothing sweeps all
// connections as the stages' loops do.

#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <csignal>
#include <optional>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

using asio::ip::tcp;
using Error = asio::error_code;
using iolab::Clock;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_awaitable = asio::use_awaitable;

// Writes one response: the head and the first piece of a file body leave in
// one gathered write, then the rest of the body a chunk at a time (read()
// into a user buffer, as stages 01-07 do). The chunk exists only while a
// body is being sent, so an idle connection does not hold 64 KiB. Each write
// must be done within --send-timeout: `clock` restarts before each one.
asio::awaitable<bool> send_response(tcp::socket& socket, iolab::Response& response,
                                    iolab::ConnectionClock& clock) {
    Error error;
    std::string_view head = response.head;
    std::vector<char> chunk(
        static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, response.file_length)));
    do {
        std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), response.file_length));
        ssize_t got =
            want ? ::pread(response.file.get(), chunk.data(), want, response.file_offset) : 0;
        if (want && got <= 0) co_return false;  // the file was truncated under us
        response.file_offset += got;
        response.file_length -= static_cast<std::uint64_t>(got);
        std::array<asio::const_buffer, 2> buffers{
            asio::buffer(head), asio::buffer(chunk.data(), static_cast<std::size_t>(got))};
        clock.update(iolab::Waiting::client_to_read, {.sent = true});
        std::size_t sent =
            co_await asio::async_write(socket, buffers, asio::redirect_error(use_awaitable, error));
        if (error) co_return false;
        iolab::stats().bytes_sent += sent;
        head = {};
    } while (response.file_length > 0);
    iolab::stats().requests++;
    co_return true;
}

// One connection, start to finish: the same loop as stage01's serve(), but
// every wait is a co_await, so thousands of these share one thread. `clock`
// says what it waits for, since when (common/timeouts.hpp).
//
// Two read buffers. The one in the coroutine's frame is small, since every
// idle connection holds one (a 16 KiB one cost 718 MB at 10,000 idle
// clients). When a read fills it, more is probably waiting: the next read
// takes it at once, without waiting, into a big buffer of the thread's. (An
// async_wait() followed by a read would need no frame buffer at all, but
// asio re-arms the socket with an epoll_ctl() for every wait: a system call
// per request.)
asio::awaitable<void> converse(tcp::socket& socket, const iolab::DocRoot& root,
                               iolab::ConnectionClock& clock) {
    thread_local std::array<char, 16 * 1024> big;
    std::array<char, 512> small;
    iolab::Session session(root);
    Error error;
    socket.non_blocking(true, error);  // read_some() below must not block the thread
    bool received = false;             // since the last clock update
    bool more_waiting = false;         // the last read filled its buffer
    for (;;) {
        std::uint64_t answered = session.answered();
        while (std::optional<iolab::Response> response = session.next_response()) {
            if (!co_await send_response(socket, *response, clock)) co_return;
        }
        if (session.finished()) break;
        clock.update(iolab::waiting_for(session, false),
                     {.received = received, .answered = session.answered() != answered});
        std::size_t n = 0;
        const char* data = big.data();
        if (more_waiting) n = socket.read_some(asio::buffer(big), error);
        if (!more_waiting || error == asio::error::would_block) {
            data = small.data();
            n = co_await socket.async_read_some(asio::buffer(small),
                                                asio::redirect_error(use_awaitable, error));
        }
        more_waiting = !error && n == (data == small.data() ? small.size() : big.size());
        received = true;
        if (error == asio::error::eof)
            session.feed_eof();
        else if (error)
            co_return;  // reset, timed out (cancelled by the watchdog), or stopping
        else
            session.feed({data, n});
    }
    // End our side first so unread request bytes do not turn the close into a reset.
    socket.shutdown(tcp::socket::shutdown_send, error);
}

// Returns once the connection's deadline has passed. The deadline may move
// while it sleeps, even closer (an idle wait of 60 s becomes a send wait of
// 30 s), but never to less than the shortest timeout from the moment it
// moves: waking at that distance at the latest, the watchdog is never late.
asio::awaitable<void> watchdog(const iolab::ConnectionClock& clock,
                               const iolab::Timeouts& timeouts) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    Clock::duration look_again = iolab::shortest_timeout(timeouts).value_or(std::chrono::hours(1));
    for (Clock::time_point now = Clock::now(); now < clock.deadline(timeouts); now = Clock::now()) {
        timer.expires_at(std::min(clock.deadline(timeouts), now + look_again));
        co_await timer.async_wait(use_awaitable);  // throws when cancelled: the conversation ended
    }
}

asio::awaitable<void> serve(tcp::socket socket, const iolab::DocRoot& root,
                            const iolab::Timeouts& timeouts) {
    iolab::ConnectionClock clock;
    auto ended = co_await (converse(socket, root, clock) || watchdog(clock, timeouts));
    // The watchdog won: a client that stopped reading is reset (see reset_on_close()).
    if (ended.index() == 1 && clock.waiting() == iolab::Waiting::client_to_read)
        iolab::reset_on_close(socket.native_handle());
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const iolab::DocRoot& root,
                                  const iolab::Timeouts& timeouts) {
    const tcp protocol = acceptor.local_endpoint().protocol();
    for (;;) {
        // Wait for a newcomer, then accept it with common/'s accept_connection()
        // rather than asio's async_accept: out of descriptors (EMFILE), it
        // refuses the newcomer with ERR 503 busy through a spare descriptor, as
        // every stage does. asio would only report the error and leave the
        // newcomer in the backlog, the listener readable.
        Error error;
        co_await acceptor.async_wait(tcp::acceptor::wait_read,
                                     asio::redirect_error(use_awaitable, error));
        if (error) co_return;  // operation_aborted: stopping
        iolab::Accepted accepted = iolab::accept_connection(acceptor.native_handle());
        if (accepted.error == EINVAL) co_return;  // the listener was shut down
        if (accepted.error) continue;             // EAGAIN (someone else took it) or refused
        iolab::stats().connections++;
        // A strand per connection: with --threads > 1, its conversation and
        // its watchdog must still take turns.
        auto strand = asio::make_strand(acceptor.get_executor());
        tcp::socket socket(strand, protocol, accepted.socket.release());
        asio::co_spawn(strand, serve(std::move(socket), root, timeouts), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    int threads = 1;
    iolab::CommandLine cli(
        "asio_server", "The iolab protocol on standalone asio (C++20 coroutines), for comparison.",
        9100);
    cli.add_flag("--threads", "threads running the io_context", threads, 1, 64);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::stats();  // map the counters
        asio::io_context context(threads);
        tcp::resolver resolver(context);
        tcp::endpoint endpoint =
            *resolver.resolve(options.host, std::to_string(options.port)).begin();
        tcp::acceptor acceptor(context, endpoint);  // sets SO_REUSEADDR
        acceptor.native_non_blocking(true);         // accept_connection() must never block
        std::signal(SIGPIPE, SIG_IGN);
        asio::signal_set stop_signals(context, SIGINT, SIGTERM);
        stop_signals.async_wait([&](const Error&, int) { context.stop(); });

        iolab::announce_listening(options, acceptor.native_handle());
        asio::co_spawn(context, accept_loop(acceptor, root, options.timeouts), asio::detached);

        std::vector<std::jthread> extra;
        for (int i = 1; i < threads; ++i)
            extra.emplace_back([&] { context.run(); });
        context.run();
        extra.clear();  // joins
        iolab::print_summary("asio_server");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
