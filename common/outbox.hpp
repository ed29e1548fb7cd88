// Outbox: the responses of one connection waiting to be written, in order.
//
// It is what turns the protocol core's Responses into write() calls, for
// blocking sockets (flush() returns when all is sent) and nonblocking ones
// (flush() returns would_block when the socket buffer is full, and resumes
// exactly where it stopped next time). File bodies go through a BodySender:
// by default read() into a user buffer then write() (the notes' four copies,
// stages 01-07); stage08 plugs in sendfile, mmap or splice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "net.hpp"
#include "protocol.hpp"

namespace iolab {

// Moves part of a response's file region to a socket. Implementations advance
// r.file_offset and shrink r.file_length by what they sent.
class BodySender {
public:
    virtual ~BodySender() = default;
    // Sends at most `max_bytes` (at least 1) of the body. ok (progress made:
    // call again), would_block, or closed (the peer is gone, or the file
    // ended early because it was truncated while we sent it).
    virtual IoResult send_body(int socket, Response& r, std::size_t max_bytes) = 0;
    // The current response is finished or abandoned: drop per-response state.
    virtual void reset() {}
};

class Outbox {
public:
    // With no sender, file bodies are copied through a user buffer (read + write).
    explicit Outbox(std::unique_ptr<BodySender> sender = nullptr);

    void push(Response r);

    // Writes as much as the socket accepts, but no more than `budget` bytes.
    // ok: everything queued was sent. would_block: the socket is full, or
    // this call's budget is spent; call again when writable. closed: the
    // peer is gone (or a file was truncated mid-body); close the connection.
    // A loop serving many clients passes write_budget: a client that reads
    // as fast as we write never fills its socket, and without a budget one
    // flush() would send it a whole 256 MiB file while the others wait.
    Io flush(int socket, std::size_t budget = unlimited);

    bool empty() const { return items_.empty(); }
    // The high-water mark: above it, stop reading (and parsing) this client's
    // requests until flush() has drained the queue. This bounds what a client
    // that never reads can make us hold: a few responses and their buffers.
    bool full() const;
    // A response with close_after was queued: close once flush() returns ok.
    bool closing() const { return closing_; }
    // Bytes held in memory (queued heads and what is pending), for tests and stats.
    std::size_t buffered_bytes() const { return head_bytes_ + (pending_end_ - pending_begin_); }
    // Bytes written to the socket so far: progress, for the send timeout.
    std::uint64_t sent() const { return sent_; }

    static constexpr std::size_t max_queued_responses = 16;
    static constexpr std::size_t high_water_bytes = 256 * 1024;
    static constexpr std::size_t copy_chunk = 64 * 1024;
    static constexpr std::size_t unlimited = SIZE_MAX;
    // About half a millisecond of sending on loopback: a fair turn that
    // costs the loop one more wait per MiB, which is noise.
    static constexpr std::size_t write_budget = 1024 * 1024;

private:
    bool read_chunk(Response& front, std::size_t offset);
    std::string_view pending() const;

    std::unique_ptr<BodySender> sender_;
    std::deque<Response> items_;
    bool head_taken_ = false;        // the front response's head has been moved to pending_
    std::string head_;               // the head being written
    std::unique_ptr<char[]> chunk_;  // the copy path's user buffer (only while a body is sent)
    // Bytes not yet written: [pending_begin_, pending_end_) of chunk_ or of
    // head_. Offsets, not a string_view, so that an Outbox can be moved.
    bool pending_in_chunk_ = false;
    std::size_t pending_begin_ = 0, pending_end_ = 0;
    bool more_ = false;           // write pending_ with MSG_MORE (a body follows)
    std::size_t head_bytes_ = 0;  // sum of the heads still queued in items_
    bool closing_ = false;
    std::uint64_t sent_ = 0;
};

}  // namespace iolab
