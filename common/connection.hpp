// Connection: one client of an event-driven server (stages 04-09 and 11).
//
// It holds everything per client: the socket, the protocol Session (input
// not yet parsed) and the Outbox (replies not yet written). The event loop
// calls advance() whenever the socket may be ready, and advance() does all it
// can without blocking, then tells the loop what to wait for next. So the
// loop alone decides *how* to wait (busy polling, select, poll, epoll): the
// diff between stages 04, 05, 06 and 07 is only that.
//
// advance() reads and writes until EAGAIN, so it is correct with
// edge-triggered epoll too: it never leaves readable bytes behind unless its
// output is over the high-water mark, and then the next writable event (which
// the loop will wait for) resumes the reading.
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

class Connection {
public:
    Connection(Fd socket, const DocRoot& root, std::unique_ptr<BodySender> sender = nullptr);

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
    bool input_done_ = false;     // EOF seen, or the session will read no more
    std::uint64_t received_ = 0;  // bytes read so far
    ConnectionClock clock_;
};

}  // namespace iolab
