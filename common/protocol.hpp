// The protocol core: sans-I/O. It is fed the bytes a connection received and
// hands back the responses to send, in request order. It never reads or
// writes a socket, so every stage, the asio server and the tests share it,
// and each stage is free to move the bytes however its I/O model does.
//
// A response is some bytes (`head`), optionally followed by a region of an
// open file: stages 01-07 copy it with read()+write(), stage08 with sendfile().
//
// The protocol (docs/protocol.md is the contract): line commands ECHO, GET, QUIT, and HTTP/1.x
// GET/HEAD/POST /echo, pipelined, answered in order.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "docroot.hpp"
#include "fd.hpp"

namespace iolab {

struct Limits {
    std::size_t max_line = 8 * 1024;           // request line, else 414
    std::size_t max_header_block = 16 * 1024;  // HTTP headers, else 431
    std::size_t max_body = 1024 * 1024;        // POST /echo body, else 413
};

struct Response {
    std::string
        head;  // bytes to send first (a line reply, or HTTP status line + headers [+ small body])
    Fd file;   // when valid: `file_length` bytes of it from `file_offset` follow `head`
    off_t file_offset = 0;
    std::uint64_t file_length = 0;
    bool close_after = false;  // close the connection once this response is sent
    bool is_error = false;     // an error reply (the summary and tests may want to know)

    std::uint64_t size() const { return head.size() + file_length; }
};

// The protocol state of one connection.
class Session {
public:
    explicit Session(const DocRoot& root, Limits limits = {});

    // Bytes received from the peer, in any chunking. Hand over at most a
    // read buffer's worth at a time; the session buffers no more than one
    // request's limit beyond that. Ignored once the session is finished.
    void feed(std::string_view bytes);

    // The peer closed its write side: requests already buffered are still
    // answered (a final line without LF counts as a line), then finished().
    void feed_eof();

    // Parses the next complete request in the buffered input and returns its
    // response, or nothing when more input is needed (or the session is finished).
    // Pull responses one at a time: a stage with a full output queue simply
    // stops asking, and stops reading, which is how a client that does not
    // read its replies gets throttled instead of growing server memory.
    std::optional<Response> next_response();

    // No response will ever come again: a response with close_after was
    // handed out, or the peer's EOF was seen and the input is used up.
    // Meaningful after next_response() has returned nothing.
    bool finished() const { return closing_ || eof_; }

    // Bytes received but not yet parsed.
    std::size_t buffered() const { return in_.size() - pos_; }

    // A request has begun and is not complete: some of its bytes are
    // buffered, or its request line was parsed and its headers or body are
    // still to come. (For the timeouts: common/timeouts.hpp.)
    bool in_request() const { return state_ != State::request_line || buffered() > 0; }

    // How many responses next_response() has handed out so far.
    std::uint64_t answered() const { return answered_; }

private:
    enum class State { request_line, headers, body };
    struct HttpRequest {
        std::string method, target;
        int minor_version = 1;
        bool keep_alive = true;
        bool has_host = false, has_length = false, expect_continue = false;
        bool wants_close = false, wants_keep_alive = false;  // Connection: close / keep-alive
        std::uint64_t content_length = 0;
        std::size_t header_bytes = 0;
    };

    std::optional<std::string_view> take_line();
    std::optional<Response> on_request_line(std::string_view line);
    std::optional<Response> on_line_command(std::string_view line);
    std::optional<Response> on_header_line(std::string_view line);
    std::optional<Response> on_headers_done();
    Response http_response();
    Response line_get(std::string_view path);
    Response http_error(int status, bool close);
    Response finish(Response r);
    void compact();

    const DocRoot& root_;
    Limits limits_;
    std::string in_;
    std::size_t pos_ = 0;      // start of unparsed input in in_
    std::size_t scanned_ = 0;  // bytes after pos_ already searched for LF
    State state_ = State::request_line;
    HttpRequest req_;
    bool eof_ = false;
    bool closing_ = false;
    std::uint64_t answered_ = 0;
};

}  // namespace iolab
