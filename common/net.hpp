// Socket helpers shared by every stage: listening, accepting, reading and
// writing with the expected conditions (EAGAIN, EOF, ECONNRESET, EINTR,
// short writes) reported by return value, never by exception.
//
// Unexpected failures (a bad address, a listen() that fails) throw
// std::system_error, caught once in each stage's main().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fd.hpp"

namespace iolab {

// The outcome of one I/O step.
enum class Io {
    ok,           // progress was made (or everything asked for was done)
    eof,          // the peer closed its write side (read only)
    would_block,  // nonblocking descriptor: try again when ready (EAGAIN)
    closed,       // the peer is gone (ECONNRESET, EPIPE, a timeout) or we are stopping
};

struct IoResult {
    std::size_t bytes = 0;
    Io status = Io::ok;
};

// A TCP listening socket bound to host:port (port 0 picks a free one), with
// SO_REUSEADDR and close-on-exec. With `reuse_port`, SO_REUSEPORT too: several
// sockets may then listen on one port, each with its own accept queue, and
// the kernel spreads incoming connections over them (stage11).
// Throws std::system_error on failure.
Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog = 4096,
              bool reuse_port = false);

// The port a socket is bound to (the real one after --port 0).
std::uint16_t local_port(int fd);

// The result of accept_connection(): a connected socket, or why there is none.
struct Accepted {
    Fd socket;
    // 0 when `socket` is valid. Otherwise: EAGAIN (nothing pending on a
    // nonblocking listener), EMFILE/ENFILE (out of descriptors: the newcomer
    // was already answered `ERR 503 busy` and closed), or EINVAL (the listener
    // was shut down because the server is stopping).
    int error = 0;
};

// accept4() with close-on-exec, retried on EINTR (unless a stop was requested)
// and on the errors that concern only the one connection (ECONNABORTED...).
// The accepted socket gets TCP_NODELAY: stage08_zero_copy/README.md (Nagle's
// algorithm) says why.
// When descriptors run out it uses a reserved spare descriptor to accept the
// newcomer, answer `ERR 503 busy` and close it, so the listener does not stay
// readable forever and an event loop does not spin (the libev/muduo trick).
Accepted accept_connection(int listen_fd);

// Puts a descriptor into nonblocking mode (O_NONBLOCK).
void set_nonblocking(int fd);

// Reads what is available, up to buf.size() bytes. Retries EINTR unless a
// stop was requested. ok with bytes > 0, eof, would_block, or closed.
IoResult read_some(int fd, std::span<char> buf);

// Writes some bytes with send(MSG_NOSIGNAL): a gone peer is `closed`, never
// SIGPIPE. ok (bytes may be fewer than asked: a short write), would_block or closed.
IoResult write_some(int fd, std::string_view data, int flags = 0);

// Writes everything, looping over short writes (blocking sockets). ok or
// closed (the peer left, a send timeout expired, or we are stopping).
Io write_all(int fd, std::string_view data);

// Refuses a connection the server has no room for: answers `ERR 503 busy`
// (or an HTTP 503 when the client's first bytes already look like HTTP) and
// closes it. Never blocks.
void refuse_busy(Fd socket);

// Closes a connection after its last reply without destroying that reply:
// shut down our sending side, then read and discard what the client is
// still sending for a short while (lingering close, as Apache does). Closing
// with unread bytes in the receive buffer would send a reset, and a reset can
// make the client's kernel discard our reply before the client reads it.
// Blocks for at most `linger_ms`: for blocking stages (event loops linger in
// their loop instead).
void close_gently(Fd socket, int linger_ms = 500);

}  // namespace iolab
