// Timeouts (common/timeouts.hpp): the clock each connection keeps, the
// sweep interval, Connection's bookkeeping, and the three flags. Time is
// passed in, so nothing here waits for a timeout to pass.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "connection.hpp"
#include "timeouts.hpp"
#include "unit_support.hpp"

using iolab::Clock;
using iolab::ConnectionClock;
using iolab::Timeouts;
using iolab::Waiting;
using namespace std::chrono_literals;
using namespace iolab::test;

namespace {

const Timeouts short_ones{.request = 1s, .idle = 2s, .send = 3s};

}  // namespace

TEST_CASE("ConnectionClock: a new connection waits for a request, under the idle timeout",
          "[timeouts]") {
    Clock::time_point t0 = Clock::now();
    ConnectionClock clock(t0);
    CHECK(clock.waiting() == Waiting::next_request);
    CHECK(clock.deadline(short_ones) == t0 + 2s);
    CHECK_FALSE(clock.expired(short_ones, t0 + 1999ms));
    CHECK(clock.expired(short_ones, t0 + 2s));
}

TEST_CASE("ConnectionClock: more bytes of the same request do not restart the request clock",
          "[timeouts]") {
    Clock::time_point t0 = Clock::now();
    ConnectionClock clock(t0);
    clock.update(Waiting::rest_of_request, {.received = true}, t0 + 5s);  // the first byte
    CHECK(clock.deadline(short_ones) == t0 + 6s);
    clock.update(Waiting::rest_of_request, {.received = true}, t0 + 5500ms);  // slowloris
    clock.update(Waiting::rest_of_request, {.received = true}, t0 + 5900ms);
    CHECK(clock.deadline(short_ones) == t0 + 6s);
    CHECK(clock.expired(short_ones, t0 + 6s));

    // A request was answered and another has begun: its own clock starts.
    clock.update(Waiting::rest_of_request, {.received = true, .answered = true}, t0 + 5950ms);
    CHECK(clock.deadline(short_ones) == t0 + 6950ms);
}

TEST_CASE("ConnectionClock: any byte restarts the idle clock, any byte sent the send clock",
          "[timeouts]") {
    Clock::time_point t0 = Clock::now();
    ConnectionClock clock(t0);
    clock.update(Waiting::next_request, {.received = true}, t0 + 1s);
    CHECK(clock.deadline(short_ones) == t0 + 3s);
    clock.update(Waiting::next_request, {}, t0 + 2s);  // nothing happened
    CHECK(clock.deadline(short_ones) == t0 + 3s);

    clock.update(Waiting::client_to_read, {.answered = true, .sent = true}, t0 + 2s);
    CHECK(clock.deadline(short_ones) == t0 + 5s);
    clock.update(Waiting::client_to_read, {.received = true}, t0 + 4s);  // reads, but no progress
    CHECK(clock.deadline(short_ones) == t0 + 5s);
    clock.update(Waiting::client_to_read, {.sent = true}, t0 + 4500ms);
    CHECK(clock.deadline(short_ones) == t0 + 7500ms);
    CHECK(clock.waiting() == Waiting::client_to_read);
}

TEST_CASE("ConnectionClock: a timeout of 0 never expires", "[timeouts]") {
    Clock::time_point t0 = Clock::now();
    ConnectionClock clock(t0);
    Timeouts off{.request = 0s, .idle = 0s, .send = 0s};
    CHECK(clock.deadline(off) == Clock::time_point::max());
    CHECK_FALSE(clock.expired(off, t0 + 1000h));
}

TEST_CASE("sweep_interval: a quarter of the shortest timeout on, at most a second", "[timeouts]") {
    CHECK(iolab::sweep_interval(short_ones) == 250ms);
    CHECK(iolab::sweep_interval(Timeouts{}) == 1s);  // the defaults: 30, 60, 30 s
    CHECK(iolab::sweep_interval(Timeouts{.request = 0s, .idle = 2s, .send = 0s}) == 500ms);
    CHECK_FALSE(iolab::sweep_interval(Timeouts{.request = 0s, .idle = 0s, .send = 0s}));
    CHECK(iolab::shortest_timeout(Timeouts{.request = 0s, .idle = 7s, .send = 9s}) == 7s);
}

TEST_CASE("waiting_for: what a Session's state means for the timeouts", "[timeouts]") {
    TempRoot root;
    iolab::Session session(root.docroot());
    CHECK(iolab::waiting_for(session, false) == Waiting::next_request);
    session.feed("ECH");
    CHECK_FALSE(session.next_response().has_value());
    CHECK(iolab::waiting_for(session, false) == Waiting::rest_of_request);
    CHECK(iolab::waiting_for(session, true) == Waiting::client_to_read);
    session.feed("O hi\n");
    CHECK(session.next_response().has_value());
    CHECK(session.answered() == 1);
    CHECK(iolab::waiting_for(session, false) == Waiting::next_request);
    // An HTTP request line is parsed at once; the request goes on until its headers end.
    session.feed("GET /hello.txt HTTP/1.1\r\n");
    CHECK_FALSE(session.next_response().has_value());
    CHECK(session.buffered() == 0);
    CHECK(iolab::waiting_for(session, false) == Waiting::rest_of_request);
}

TEST_CASE("TimeoutSweep: walks the connections once per interval, returns the expired ones",
          "[timeouts]") {
    TempRoot root;
    Clock::time_point t0 = Clock::now();
    iolab::TimeoutSweep sweep(short_ones, t0);
    CHECK(sweep.wait_ms(t0) == 250);
    CHECK(sweep.wait_ms(t0 + 100ms) == 150);

    // Indexed by descriptor, as the loops keep them; the empty slots (the
    // clients' ends, descriptors below the first) hold no connection.
    std::vector<std::unique_ptr<iolab::Connection>> connections;
    std::vector<SocketPair> clients;
    auto connect = [&] {
        SocketPair p = make_socketpair();
        int fd = p.a.get();
        REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
        if (connections.size() <= static_cast<std::size_t>(fd)) connections.resize(fd + 1);
        connections[fd] = std::make_unique<iolab::Connection>(std::move(p.a), root.docroot(),
                                                              iolab::Drain::until_eagain);
        clients.push_back(std::move(p));
        return fd;
    };
    int silent = connect();
    Clock::time_point silent_since = Clock::now();  // its idle clock started before this
    std::this_thread::sleep_for(200ms);
    int talking = connect();  // its idle clock starts 200 ms later
    REQUIRE(iolab::write_all(clients.back().b.get(), "ECHO x\n") == iolab::Io::ok);
    CHECK(connections[talking]->advance() == iolab::Interest::read);

    CHECK(sweep.expired(connections, t0 + 100ms).empty());  // no sweep due yet
    CHECK(sweep.expired(connections, silent_since + 1s).empty());
    std::vector<int> due = sweep.expired(connections, silent_since + 2050ms);
    CHECK(due == std::vector<int>{silent});
    CHECK(sweep.expired(connections, silent_since + 2100ms).empty());  // next sweep not due
    CHECK(sweep.wait_ms(silent_since + 2050ms) == 250);
    CHECK(sweep.wait_ms(silent_since + 5s) == 0);  // overdue: do not sleep
}

TEST_CASE("--request-timeout, --idle-timeout and --send-timeout", "[timeouts][cli]") {
    iolab::CommandLine cli("stage07_epoll", "epoll: the ready list", 9007);
    auto run = [&](std::vector<std::string> args, iolab::ServerOptions& options) {
        args.insert(args.begin(), "stage07_epoll");
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        CapturedOutput out(STDOUT_FILENO);
        CapturedOutput err(STDERR_FILENO);
        std::optional<int> status = cli.parse(static_cast<int>(args.size()), argv.data(), options);
        err.finish();
        out.finish();
        return status;
    };
    iolab::ServerOptions options;
    CHECK_FALSE(run({}, options).has_value());
    CHECK(options.timeouts.request == 30s);
    CHECK(options.timeouts.idle == 60s);
    CHECK(options.timeouts.send == 30s);
    CHECK_FALSE(run({"--request-timeout", "1", "--idle-timeout=2", "--send-timeout", "0"}, options)
                    .has_value());
    CHECK(options.timeouts.request == 1s);
    CHECK(options.timeouts.idle == 2s);
    CHECK(options.timeouts.send == 0s);
    for (std::string bad : {"-1", "1.5", "86401", "soon", ""}) {
        iolab::ServerOptions ignored;
        CAPTURE(bad);
        CHECK(run({"--idle-timeout", bad}, ignored) == 2);
    }
}
