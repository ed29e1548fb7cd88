#include "connection.hpp"

#include <sys/socket.h>

#include <optional>

namespace iolab {

Connection::Connection(Fd socket, const DocRoot& root, Drain drain,
                       std::unique_ptr<BodySender> sender)
    : socket_(std::move(socket)), session_(root), outbox_(std::move(sender)), drain_(drain) {}

Interest Connection::advance() {
    std::uint64_t received = received_, answered = session_.answered(), sent = outbox_.sent();
    Interest interest = work();
    clock_.update(waiting_for(session_, !outbox_.empty()),
                  {.received = received_ != received,
                   .answered = session_.answered() != answered,
                   .sent = outbox_.sent() != sent});
    return interest;
}

Interest Connection::work() {
    char buffer[16 * 1024];
    bool emptied = false;  // a read() came back short: the receive buffer was empty
    for (;;) {
        // 1. Turn complete requests into replies, but only while the outbox
        // has room: this is what throttles a client that never reads.
        while (!outbox_.full()) {
            std::optional<Response> response = session_.next_response();
            if (!response) break;
            outbox_.push(std::move(*response));
        }
        // Stopped for want of room, not of requests: more may be waiting in
        // the session (so finished() does not yet mean all were answered).
        bool more_requests = outbox_.full();

        // 2. Write what we can.
        // Level-triggered, a turn may end before EAGAIN: the socket is still
        // writable, so the next wait reports it at once, after the others
        // have had their turn. An edge would not come again: write it all.
        Io written =
            outbox_.flush(socket_.get(), drain_ == Drain::until_short_read ? Outbox::write_budget
                                                                           : Outbox::unlimited);
        if (written == Io::closed) return Interest::close;
        bool output_pending = written == Io::would_block;
        if (!output_pending && (outbox_.closing() || (!more_requests && session_.finished()))) {
            // Everything was sent and nothing more will come: end our side
            // first, so unread request bytes do not turn our close into a
            // reset that could destroy the last reply.
            ::shutdown(socket_.get(), SHUT_WR);
            return Interest::close;
        }
        // All written, and requests already received are still unanswered:
        // answer them now. No event would come for them: their bytes were
        // read long ago (and an edge-triggered epoll reports each edge once).
        if (more_requests && !output_pending) continue;

        // 3. Read more, unless the outbox is over its high-water mark.
        if (outbox_.full() || input_done_) return output_pending ? Interest::write : Interest::read;
        // Level-triggered: the last read() emptied the buffer, and what came
        // since (bytes or the EOF) keeps the socket readable: the loop's next
        // wait reports it. Another read() now would most likely say EAGAIN.
        if (emptied) return output_pending ? Interest::read_write : Interest::read;
        IoResult got = read_some(socket_.get(), buffer);
        switch (got.status) {
            case Io::would_block:
                return output_pending ? Interest::read_write : Interest::read;
            case Io::eof:
                session_.feed_eof();
                input_done_ = true;
                break;
            case Io::ok:
                received_ += got.bytes;
                session_.feed({buffer, got.bytes});
                emptied = drain_ == Drain::until_short_read && got.bytes < sizeof buffer;
                break;
            case Io::closed:
                return Interest::close;
        }
    }
}

}  // namespace iolab
