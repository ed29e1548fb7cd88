#include "outbox.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "counters.hpp"

namespace iolab {

Outbox::Outbox(std::unique_ptr<BodySender> sender) : sender_(std::move(sender)) {}

void Outbox::push(Response r) {
    if (closing_) return;  // nothing goes out after a reply that closes the connection
    closing_ = r.close_after;
    head_bytes_ += r.head.size();
    items_.push_back(std::move(r));
}

bool Outbox::full() const {
    return items_.size() >= max_queued_responses || buffered_bytes() >= high_water_bytes;
}

// The copy path: read the next piece of the front file into chunk_ at
// `offset`. This read() is the copy from the page cache into user space
// that stage08's sendfile() avoids. Returns false if the file ended early.
bool Outbox::read_chunk(Response& front, std::size_t offset) {
    if (!chunk_) chunk_ = std::make_unique<char[]>(copy_chunk);
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(copy_chunk - offset, front.file_length));
    ssize_t n;
    do {
        n = ::pread(front.file.get(), chunk_.get() + offset, want, front.file_offset);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;  // truncated while we were sending it (or an I/O error)
    front.file_offset += n;
    front.file_length -= static_cast<std::uint64_t>(n);
    pending_in_chunk_ = true;
    pending_begin_ = 0;
    pending_end_ = offset + static_cast<std::size_t>(n);
    return true;
}

std::string_view Outbox::pending() const {
    const char* base = pending_in_chunk_ ? chunk_.get() : head_.data();
    return {base + pending_begin_, pending_end_ - pending_begin_};
}

Io Outbox::flush(int socket, std::size_t budget) {
    Stats& counters = stats();
    std::size_t spent = 0;  // bytes written by this call
    for (;;) {
        // 1. Whatever is pending (a head, or a chunk of a file) goes first.
        while (pending_begin_ < pending_end_) {
            if (spent >= budget) return Io::would_block;  // this turn is over
            IoResult w =
                write_some(socket, pending().substr(0, budget - spent), more_ ? MSG_MORE : 0);
            if (w.status != Io::ok) return w.status;
            pending_begin_ += w.bytes;
            spent += w.bytes;
            sent_ += w.bytes;
            counters.bytes_sent.fetch_add(w.bytes, std::memory_order_relaxed);
        }
        if (items_.empty()) {
            // An idle connection keeps no copy buffer, and no head either:
            // clear() would keep the last head's capacity (4 KiB after a 4 KiB
            // echo, 20 MB over 5,000 idle clients). The head came with its
            // response, so dropping it costs no allocation later.
            chunk_.reset();
            head_ = std::string();
            return Io::ok;
        }
        Response& front = items_.front();

        // 2. The front response's head. On the copy path a small head shares
        // one write with the first chunk of the file: one segment, one system call.
        if (!head_taken_) {
            head_taken_ = true;
            head_bytes_ -= front.head.size();
            if (!sender_ && front.file_length > 0 && front.head.size() <= copy_chunk / 4) {
                if (!chunk_) chunk_ = std::make_unique<char[]>(copy_chunk);
                std::memcpy(chunk_.get(), front.head.data(), front.head.size());
                if (!read_chunk(front, front.head.size())) return Io::closed;
            } else {
                head_ = std::move(front.head);
                pending_in_chunk_ = false;
                pending_begin_ = 0;
                pending_end_ = head_.size();
                // A body sent by sendfile/splice follows: MSG_MORE holds the
                // head back so it leaves in one segment with the first body bytes.
                more_ = sender_ && front.file_length > 0;
            }
            continue;
        }
        more_ = false;

        // 3. The file body, a chunk at a time.
        if (front.file_length > 0) {
            if (spent >= budget) return Io::would_block;  // this turn is over
            if (sender_) {
                IoResult s = sender_->send_body(socket, front, budget - spent);
                if (s.status != Io::ok) return s.status;
                spent += s.bytes;
                sent_ += s.bytes;
                counters.bytes_sent.fetch_add(s.bytes, std::memory_order_relaxed);
            } else if (!read_chunk(front, 0)) {
                return Io::closed;
            }
            continue;
        }

        // 4. This response is complete.
        counters.requests.fetch_add(1, std::memory_order_relaxed);
        if (sender_) sender_->reset();
        items_.pop_front();
        head_taken_ = false;
    }
}

}  // namespace iolab
