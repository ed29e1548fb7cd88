// The test client: a TCP connection to the server under test, with a
// timeout on every read and every write, so a hung server fails the test
// case that met it instead of hanging CTest. Every suite uses it (namespace
// testkit: tests/support, shared by the conformance, adversarial and model
// tests, which check docs/protocol.md's contract), with the server process
// and the /proc probes beside it.
//
// Failures are reported by throwing TestError; Catch2 turns the
// exception into a failed test case and prints its message. So test cases
// do their I/O in plain statements and CHECK only values: inside CHECK(),
// a thrown error would be counted and the test case would go on, each later
// read waiting out its own timeout on a connection that is already broken.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fd.hpp"

namespace testkit {

using namespace std::chrono_literals;

// How long any single wait for the server may take before the test fails.
inline constexpr std::chrono::milliseconds io_timeout = 10s;

struct TestError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Bytes as a readable one-line C-style string ("OK 5\\n..."), cut after
// `limit` bytes: failure messages must never print a 64 MiB body.
std::string printable(std::string_view bytes, std::size_t limit = 200);

class Connection {
public:
    // Connects to host:port (numeric address). Throws TestError on
    // failure. A `receive_buffer` (bytes, 0: the default) is set as SO_RCVBUF
    // before connecting, so the window is small from the start: the server's
    // replies back up after a few kilobytes the client does not read.
    Connection(const std::string& host, std::uint16_t port, int receive_buffer = 0);

    // Sends all of `bytes` in as few writes as the kernel takes.
    void send(std::string_view bytes);
    // Sends `bytes` one write per byte (TCP_NODELAY is on: one segment each).
    void send_byte_by_byte(std::string_view bytes);
    // Sends `bytes` until done or until the server closes or resets the
    // connection, which is not an error here; returns the count sent. For
    // requests the server is expected to cut short (a line too long, junk
    // after a refusal). Still throws on a timeout.
    std::size_t send_until_closed(std::string_view bytes);

    // Exactly `n` bytes.
    std::string read_exact(std::size_t n);
    // What has arrived, at most `max` bytes, waiting for at least one: to
    // stream a body too large to hold (throws on EOF, like read_exact).
    std::string read_some(std::size_t max);
    // Up to and including the first `delimiter`.
    std::string read_until(std::string_view delimiter);
    std::string read_line() { return read_until("\n"); }
    // Everything until the server closes the connection.
    std::string read_until_eof();
    // Whatever arrives within `wait` (empty if nothing does). Does not fail on EOF.
    std::string read_for(std::chrono::milliseconds wait);

    // Returns once the server closed the connection (EOF or reset) without
    // sending anything more; throws if bytes arrive instead, or on a timeout.
    void wait_for_close();

    void shut_down_writing();
    void close() { socket_.reset(); }
    // Closes with a reset (SO_LINGER 0): the server sees ECONNRESET, not EOF.
    void abort();
    int fd() const { return socket_.get(); }

private:
    // Reads once into buffer_, waiting at most `wait`. Returns false on EOF
    // (or a reset) and throws on a timeout, unless `timeout_is_ok`.
    bool fill(std::chrono::milliseconds wait, bool timeout_is_ok = false);
    std::string take(std::size_t n);

    iolab::Fd socket_;
    std::string buffer_;  // received, not yet handed to the test
    bool eof_ = false;
};

// A request/reply round trip in the line protocol: sends `request` + "\n",
// returns the one-line reply.
std::string line_exchange(Connection& c, std::string_view request);

// A GET in the line protocol: the status line ("OK 13\n", "ERR 404 not found\n")
// and, after OK, the body.
struct LineGetReply {
    std::string status_line;
    std::string body;
};
LineGetReply line_get(Connection& c, std::string_view path);

struct HttpResponse {
    std::string status_line;  // without CRLF
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The value of a header (name compared case-insensitively).
    std::optional<std::string> header(std::string_view name) const;
};

// Reads one HTTP response. The body is framed by Content-Length; a response
// to HEAD, or a 1xx/204/304, has none; without Content-Length it runs to EOF.
HttpResponse read_http_response(Connection& c, bool to_head_request = false);

// "METHOD TARGET VERSION\r\nHost: iolab\r\n" + extra headers + "\r\n" (+ body).
// `extra_headers` are full lines, each ending in "\r\n".
std::string http_request(std::string_view method, std::string_view target,
                         std::string_view extra_headers = "", std::string_view version = "HTTP/1.1",
                         std::string_view body = "");

// "same" when `got` equals `expected`; otherwise where and how they differ,
// short enough to print: CHECK(compare_bytes(body, expected) == "same").
std::string compare_bytes(std::string_view got, std::string_view expected);

}  // namespace testkit
