#include "connection.hpp"

#include <sys/socket.h>

#include <optional>

namespace iolab {

Connection::Connection(Fd socket, const DocRoot& root, std::unique_ptr<BodySender> sender)
    : socket_(std::move(socket)), session_(root), outbox_(std::move(sender)) {}

Interest Connection::advance() {
    char buffer[16 * 1024];
    for (;;) {
        // 1. Turn complete requests into replies, but only while the outbox
        // has room: this is what throttles a client that never reads.
        while (!outbox_.full()) {
            std::optional<Response> response = session_.next_response();
            if (!response) break;
            outbox_.push(std::move(*response));
        }

        // 2. Write what we can.
        Io written = outbox_.flush(socket_.get());
        if (written == Io::closed) return Interest::close;
        bool output_pending = written == Io::would_block;
        if (!output_pending && (outbox_.closing() || session_.finished())) {
            // Everything was sent and nothing more will come: end our side
            // first, so unread request bytes do not turn our close into a
            // reset that could destroy the last reply.
            ::shutdown(socket_.get(), SHUT_WR);
            return Interest::close;
        }

        // 3. Read more, unless the outbox is over its high-water mark.
        if (outbox_.full() || input_done_) return output_pending ? Interest::write : Interest::read;
        IoResult got = read_some(socket_.get(), buffer);
        switch (got.status) {
            case Io::would_block:
                return output_pending ? Interest::read_write : Interest::read;
            case Io::eof:
                session_.feed_eof();
                input_done_ = true;
                break;
            case Io::ok:
                session_.feed({buffer, got.bytes});
                break;
            case Io::closed:
                return Interest::close;
        }
    }
}

}  // namespace iolab
