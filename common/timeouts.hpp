// Timeouts: what a server does about a client that does not move its
// connection on (--request-timeout, --idle-timeout, --send-timeout; see
// Timeouts in cli.hpp).
//
// A connection is always waiting for one thing, and each thing has its clock:
//
//   next_request     nothing under way: for the client's next request. Any
//                    byte restarts the clock (--idle-timeout).
//   rest_of_request  a request has begun: for its last byte. The clock runs
//                    from the request's first byte, and more bytes of the same
//                    request do not restart it (--request-timeout). That is
//                    what defeats slowloris: a byte every few seconds keeps an
//                    idle timer happy for ever.
//   client_to_read   replies are waiting: for the client to take them. Every
//                    byte it takes restarts the clock (--send-timeout).
//
// Blocking stages (01-03) let the kernel keep time: SO_SNDTIMEO and
// SO_RCVTIMEO make a blocked write() or read() give up (SocketTimeouts).
// An event loop (04-11) never blocks on one client, so each connection (a
// Connection, or stage10's Client) keeps its ConnectionClock, and the loop
// sweeps them periodically (TimeoutSweep).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "cli.hpp"
#include "protocol.hpp"

namespace iolab {

using Clock = std::chrono::steady_clock;  // never jumps when the wall clock is set

enum class Waiting { next_request, rest_of_request, client_to_read };

// What the connection is waiting for now, from its protocol state.
// `replies_pending`: responses not yet written out.
Waiting waiting_for(const Session& session, bool replies_pending);

// What one step of work on a connection achieved.
struct Progress {
    bool received = false;  // bytes came in
    bool answered = false;  // a response was produced: a request was complete
    bool sent = false;      // bytes went out
};

// One connection's clock: what it waits for, and since when.
class ConnectionClock {
public:
    explicit ConnectionClock(Clock::time_point now = Clock::now()) : since_(now) {}

    // After each step of work. The clock restarts when the connection starts
    // waiting for something else, or when the step was progress towards what
    // it waits for (see the table above); otherwise it keeps running.
    void update(Waiting waiting, Progress done, Clock::time_point now = Clock::now());

    Waiting waiting() const { return waiting_; }
    // When the current wait times out; time_point::max() if its timeout is off.
    Clock::time_point deadline(const Timeouts& timeouts) const;
    bool expired(const Timeouts& timeouts, Clock::time_point now) const {
        return now >= deadline(timeouts);
    }

private:
    Waiting waiting_ = Waiting::next_request;
    Clock::time_point since_;
};

// The shortest of the timeouts that are on; nothing if every one is off.
// No deadline can be set closer than that to the moment it is set.
std::optional<std::chrono::seconds> shortest_timeout(const Timeouts& timeouts);

// How often an event loop sweeps its connections for expired ones: a quarter
// of the shortest timeout, at most a second (a timeout fires at most that
// late). Nothing if every timeout is off.
std::optional<std::chrono::milliseconds> sweep_interval(const Timeouts& timeouts);

// Sets SO_LINGER to {on, 0 s}: the close() that follows sends a reset and
// throws away whatever is still queued to send. For a client that stopped
// reading: an orderly close would leave the kernel holding our unsent bytes
// (up to the whole send buffer) and probing the client's zero window for
// minutes after we let go of the descriptor.
void reset_on_close(int socket);

// Timeouts on a blocking socket (stages 01-03). The constructor sets
// SO_SNDTIMEO: a send() that can move no byte for --send-timeout fails with
// EAGAIN (the Outbox's flush() says would_block). The period restarts with
// every send(), and a send() that moved some bytes then waited returns them
// after the full period, so a client that stops reading is dropped after one
// to about three periods (the kernel counts a zero-window probe it accepts
// as progress). before_read() sets SO_RCVTIMEO to what is left of the idle
// or the request timeout, so the read() that follows gives up (read_some()
// says would_block) at the deadline. The price: one setsockopt() per read().
class SocketTimeouts {
public:
    SocketTimeouts(int socket, const Timeouts& timeouts);

    // Before each blocking read, after answering what has arrived. False if
    // the time is already up: close the connection.
    bool before_read(const Session& session);

private:
    int socket_;
    Timeouts timeouts_;
    ConnectionClock clock_;
    std::uint64_t answered_ = 0;  // session.answered() at the previous call
    bool first_read_ = true;
    // The SO_RCVTIMEO last set: a request answered at once restarts the idle
    // wait at its full length, the same value as last time, and the
    // setsockopt() call (a system call per request) is saved.
    std::optional<std::chrono::microseconds> receive_timeout_;
};

// The periodic sweep of an event loop (stages 04-11): the loop waits for
// events at most wait_ms(), then calls expired() after handling them.
//
// The cost: once per interval, not per event, expired() walks every
// connection, O(n), and most have not expired. That is the known weakness of
// this simple scheme. Servers with many connections keep their deadlines in
// a structure ordered by time instead, and look only at its front: a timer
// wheel (a ring of buckets, one per tick, as the Linux kernel's own timers
// and Netty do: O(1) to add, move or remove), or a sorted tree or heap of
// deadlines (nginx's red-black tree, libev's 4-heap: O(log n)), whose first
// entry also gives the exact time to sleep.
class TimeoutSweep {
public:
    explicit TimeoutSweep(const Timeouts& timeouts, Clock::time_point now = Clock::now());

    // How long the loop may sleep in select()/poll()/epoll_wait() before the
    // next sweep is due, in ms; -1 (for ever) if every timeout is off.
    int wait_ms(Clock::time_point now = Clock::now()) const;
    // When the next sweep is due; nothing if every timeout is off.
    std::optional<Clock::time_point> next() const;

    // True once per interval, when a sweep is due (and then the next one is
    // scheduled); otherwise, and usually, false.
    bool due(Clock::time_point now = Clock::now());
    // Whether the client of the connection on `socket`, with `clock`, has
    // kept it waiting too long. If so and it stopped reading, the socket is
    // set to reset_on_close() before the loop closes it.
    bool expire(const ConnectionClock& clock, int socket, Clock::time_point now) const;

    // When a sweep is due: the descriptors of the connections whose time is
    // up, for the loop to close. Otherwise, and usually, nothing.
    // `connections` is indexed by descriptor, and holds a pointer to anything
    // with a clock() (a Connection), or null where there is no connection.
    template <typename Connections>
    std::vector<int> expired(const Connections& connections, Clock::time_point now = Clock::now()) {
        std::vector<int> fds;
        if (!due(now)) return fds;
        for (std::size_t fd = 0; fd < connections.size(); ++fd)
            if (connections[fd] && expire(connections[fd]->clock(), static_cast<int>(fd), now))
                fds.push_back(static_cast<int>(fd));
        return fds;
    }

private:
    Timeouts timeouts_;
    std::optional<std::chrono::milliseconds> interval_;
    Clock::time_point next_;
};

}  // namespace iolab
