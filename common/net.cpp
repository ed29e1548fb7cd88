#include "net.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <system_error>

#include "counters.hpp"
#include "log.hpp"
#include "stop.hpp"

namespace iolab {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::system_category(), what);
}

// A descriptor kept in reserve for the moment the process runs out: closing
// it frees exactly one slot, enough to accept the newcomer and refuse it.
// One per thread, since each event-loop thread may need its own.
thread_local Fd spare_fd;

void reserve_spare_fd() {
    if (!spare_fd) spare_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

// Returns false when there was nobody to refuse: accept4() fails with EMFILE
// before it looks at the backlog, so running out says nothing about whether
// a newcomer is waiting.
bool refuse_with_spare_fd(int listen_fd) {
    spare_fd.reset();
    Fd newcomer(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    bool refused = newcomer.valid();
    if (newcomer) refuse_busy(std::move(newcomer));
    reserve_spare_fd();
    return refused;
}

}  // namespace

Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog, bool reuse_port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
        throw std::system_error(EINVAL, std::system_category(),
                                "bad address " + host + ": " + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);

    Fd listener(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
    if (!listener) throw_errno("socket");
    // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
    int one = 1;
    if (::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        throw_errno("setsockopt(SO_REUSEADDR)");
    // SO_REUSEPORT must be set on every socket of the group before bind(),
    // and all must belong to the same user (socket(7)).
    if (reuse_port && ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        throw_errno("setsockopt(SO_REUSEPORT)");
    if (::bind(listener.get(), found->ai_addr, found->ai_addrlen) < 0)
        throw_errno("bind " + host + ":" + service);
    if (::listen(listener.get(), backlog) < 0) throw_errno("listen");
    reserve_spare_fd();
    return listener;
}

std::uint16_t local_port(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0)
        throw_errno("getsockname");
    if (address.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

Accepted accept_connection(int listen_fd) {
    reserve_spare_fd();
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            // Replies are often a small head then a body. With Nagle's
            // algorithm on, the second write waits for the ACK of the first,
            // which the client delays up to 40 ms: switch Nagle off.
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            stats().connections.fetch_add(1, std::memory_order_relaxed);
            return {Fd(fd), 0};
        }
        switch (errno) {
            case EINTR:
                if (stop_requested()) return {Fd(), EINVAL};
                continue;
            // The connection died in the backlog, or a network error that
            // concerns only it (accept(2), "Error handling"): try the next one.
            case ECONNABORTED:
            case EPROTO:
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case EOPNOTSUPP:
            case ENETUNREACH:
                continue;
            case EMFILE:
            case ENFILE: {
                int error = errno;
                // Nobody waiting: report EAGAIN, so that an event loop
                // draining the backlog stops instead of spinning on EMFILE.
                if (!refuse_with_spare_fd(listen_fd)) return {Fd(), EAGAIN};
                log_warn("out of file descriptors: refused a connection (ERR 503 busy)");
                return {Fd(), error};
            }
            case EAGAIN:
            case EINVAL:  // the listener was shut down: we are stopping
            case ENOBUFS:
            case ENOMEM:
                return {Fd(), errno};
            default:
                throw_errno("accept4");
        }
    }
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
}

IoResult read_some(int fd, std::span<char> buf) {
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n > 0) return {static_cast<std::size_t>(n), Io::ok};
        if (n == 0) return {0, Io::eof};
        if (errno == EINTR) {
            if (stop_requested()) return {0, Io::closed};
            continue;
        }
        // On a blocking socket with SO_RCVTIMEO, EAGAIN means the timeout expired.
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Io::would_block};
        return {0, Io::closed};  // ECONNRESET, ETIMEDOUT...: the peer is gone
    }
}

IoResult write_some(int fd, std::string_view data, int flags) {
    for (;;) {
        // MSG_NOSIGNAL: a peer that has gone turns into EPIPE here instead of
        // a SIGPIPE that would kill the whole server (send(2)).
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | flags);
        if (n >= 0) return {static_cast<std::size_t>(n), Io::ok};
        if (errno == EINTR) {
            if (stop_requested()) return {0, Io::closed};
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Io::would_block};
        return {0, Io::closed};  // EPIPE, ECONNRESET
    }
}

Io write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        IoResult r = write_some(fd, data);
        if (r.status != Io::ok) return Io::closed;  // would_block here means SO_SNDTIMEO expired
        data.remove_prefix(r.bytes);
    }
    return Io::ok;
}

void refuse_busy(Fd socket) {
    // Peek (never wait) at what the client sent so far: an HTTP client gets
    // an HTTP reply, anyone else the line protocol's.
    char first[8] = {};
    ssize_t n = ::recv(socket.get(), first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
    std::string_view start(first, n > 0 ? static_cast<std::size_t>(n) : 0);
    bool http = start.starts_with("GET ") || start.starts_with("HEAD ") ||
                start.starts_with("POST ") || start.starts_with("PUT ") ||
                start.starts_with("DELETE ") || start.starts_with("OPTIONS ");
    std::string_view reply = http ? std::string_view(
                                        "HTTP/1.1 503 Service Unavailable\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 5\r\n"
                                        "Connection: close\r\n\r\nbusy\n")
                                  : std::string_view("ERR 503 busy\n");
    ::send(socket.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    // Close gently: end our side, then throw away what the client already
    // sent. Closing with unread data would send a reset, and the reset can
    // destroy our reply before the client reads it.
    ::shutdown(socket.get(), SHUT_WR);
    char discard[4096];
    while (::recv(socket.get(), discard, sizeof discard, MSG_DONTWAIT) > 0) {
    }
}

void close_gently(Fd socket, int linger_ms) {
    ::shutdown(socket.get(), SHUT_WR);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(linger_ms);
    char discard[16 * 1024];
    std::size_t discarded = 0;
    // Read until the client's EOF, the deadline, or 1 MiB: a client that
    // keeps sending forever must not keep us here.
    while (discarded < 1024 * 1024 && !stop_requested()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd readable{socket.get(), POLLIN, 0};
        if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
        ssize_t n = ::recv(socket.get(), discard, sizeof discard, MSG_DONTWAIT);
        if (n <= 0) break;
        discarded += static_cast<std::size_t>(n);
    }
}

}  // namespace iolab
