// Connection: one client of an event-driven server (stages 04-09 and 11).
//
// It holds everything per client: the socket, the protocol Session (input
// not yet parsed) and the Outbox (replies not yet written). The event loop
// calls advance() whenever the socket may be ready, and advance() does all it
// can without blocking, then tells the loop what to wait for next. So the
// loop alone decides *how* to wait (busy polling, select, poll, epoll): the
// diff between stages 04, 05, 06 and 07 is only that.
//
// How far advance() reads is the loop's to say (Drain), because it depends
// on how the loop learns of readiness:
//
//   until_eagain      reads until read() says EAGAIN. What edge-triggered
//                     readiness needs (epoll's EPOLLET, stage09's signals):
//                     an edge is reported once, so bytes left behind would
//                     wait for the client's next ones. Stage04 too: it has no
//                     readiness at all, only tries.
//   until_short_read  stops after a read() that returned fewer bytes than
//                     it asked for: it emptied the receive buffer, and a
//                     level-triggered wait (select, poll, epoll's default)
//                     reports the socket again if more, or the EOF, has come
//                     since. That spares the read() whose only news is
//                     EAGAIN: one system call per request in an echo round.
//                     Writing, it also stops after Outbox::write_budget
//                     bytes, socket still writable: the level reports it
//                     again, so a client that reads as fast as we write
//                     cannot keep the loop to itself. Until EAGAIN, a
//                     connection writes all it can: no edge would resume it.
//
// Either way, what was read is parsed, answered and flushed before advance()
// returns, and the requests already received are answered before any more
// are read. Neither leaves readable bytes behind for good: reading stops
// early only when the output is over the high-water mark, and then the next
// writable event (which the loop will wait for) resumes it.
//
// It also keeps the connection's clock (common/timeouts.hpp): what it waits
// for and since when. The loop's periodic sweep reads it and closes the
// connections whose client has kept them waiting too long.
#pragma once

#include <cstdint>
#include <memory>

#include "fd.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "timeouts.hpp"

namespace iolab {

// What a connection waits for next.
enum class Interest {
    read,        // nothing to send: wait for the client's next bytes
    write,       // replies pending and no room to read more: wait until writable
    read_write,  // replies pending, and room for more requests
    close,       // finished or failed: the loop removes and closes it
};

// How far one advance() reads (see the top of this file).
enum class Drain {
    until_eagain,      // edge-triggered or no readiness at all: read until EAGAIN
    until_short_read,  // level-triggered: stop after a read() that did not fill the buffer
};

class Connection {
public:
    Connection(Fd socket, const DocRoot& root, Drain drain,
               std::unique_ptr<BodySender> sender = nullptr);

    int fd() const { return socket_.get(); }

    // Does every read, parse and write possible now, then says what to wait for.
    Interest advance();

    // What the client keeps this connection waiting for, and since when:
    // the loop's TimeoutSweep reads it.
    const ConnectionClock& clock() const { return clock_; }

private:
    Interest work();

    Fd socket_;
    Session session_;
    Outbox outbox_;
    Drain drain_;
    bool input_done_ = false;     // EOF seen, or the session will read no more
    std::uint64_t received_ = 0;  // bytes read so far
    ConnectionClock clock_;
};

}  // namespace iolab
