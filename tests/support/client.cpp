#include "client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace testkit {

namespace {

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

// A decimal size the server sent ("OK 13", "Content-Length: 13").
std::size_t parse_size(const std::string& text, std::string_view where) {
    std::size_t used = 0;
    unsigned long long value = 0;
    try {
        value = std::stoull(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size())
        throw TestError("bad size in " + std::string(where) + ": " + printable(text));
    return static_cast<std::size_t>(value);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::string printable(std::string_view bytes, std::size_t limit) {
    std::string out = "\"";
    for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += "\"";
    if (bytes.size() > limit) out += "... (" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

Connection::Connection(const std::string& host, std::uint16_t port, int receive_buffer) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string port_text = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0)
        throw TestError("bad server address " + host + ": " + ::gai_strerror(rc));
    socket_.reset(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket_) {
        ::freeaddrinfo(found);
        throw TestError(errno_text("socket"));
    }
    // Writes to a server that stops reading fail after the timeout, not
    // never; on Linux the send timeout bounds connect() too.
    timeval timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(io_timeout).count();
    ::setsockopt(socket_.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int one = 1;
    ::setsockopt(socket_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (receive_buffer > 0)
        ::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);

    int connected = ::connect(socket_.get(), found->ai_addr, found->ai_addrlen);
    ::freeaddrinfo(found);
    if (connected < 0)
        throw TestError(errno_text(("connect to " + host + ":" + port_text).c_str()));
}

void Connection::send(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(socket_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            throw TestError("timed out sending: the server stopped reading");
        if (n < 0) throw TestError(errno_text("send"));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::size_t Connection::send_until_closed(std::string_view bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(socket_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            throw TestError("timed out sending: the server neither read nor closed");
        if (n < 0) throw TestError(errno_text("send"));
        sent += static_cast<std::size_t>(n);
    }
    return sent;
}

void Connection::send_byte_by_byte(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
        send(bytes.substr(i, 1));
}

bool Connection::fill(std::chrono::milliseconds wait, bool timeout_is_ok) {
    if (eof_) return false;
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        pollfd p{socket_.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw TestError(errno_text("poll"));
        if (ready == 0) {
            if (timeout_is_ok) return true;
            throw TestError(
                "timed out after " + std::to_string(wait.count()) +
                " ms waiting for the server; unread bytes so far: " + printable(buffer_));
        }
        char chunk[256 * 1024];
        ssize_t n = ::recv(socket_.get(), chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        // A reset after the server's last reply counts as the end: a server
        // that closes with unread request bytes sends RST instead of FIN.
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
            eof_ = true;
            return false;
        }
        if (n < 0) throw TestError(errno_text("recv"));
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }
}

std::string Connection::take(std::size_t n) {
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
}

std::string Connection::read_exact(std::size_t n) {
    while (buffer_.size() < n) {
        if (!fill(io_timeout))
            throw TestError("the server closed the connection after " +
                            std::to_string(buffer_.size()) + " of " + std::to_string(n) +
                            " expected bytes: " + printable(buffer_));
    }
    return take(n);
}

std::string Connection::read_some(std::size_t max) {
    if (buffer_.empty() && !fill(io_timeout))
        throw TestError("the server closed the connection while more bytes were expected");
    return take(std::min(max, buffer_.size()));
}

std::string Connection::read_until(std::string_view delimiter) {
    std::size_t searched = 0;
    for (;;) {
        std::size_t start = searched >= delimiter.size() ? searched - delimiter.size() + 1 : 0;
        if (std::size_t at = buffer_.find(delimiter, start); at != std::string::npos)
            return take(at + delimiter.size());
        searched = buffer_.size();
        if (!fill(io_timeout))
            throw TestError("the server closed the connection before sending " +
                            printable(delimiter) + "; received: " + printable(buffer_));
    }
}

std::string Connection::read_until_eof() {
    while (fill(io_timeout)) {
    }
    return take(buffer_.size());
}

std::string Connection::read_for(std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (buffer_.empty() && remaining(deadline).count() > 0 && fill(remaining(deadline), true)) {
    }
    return take(buffer_.size());
}

void Connection::wait_for_close() {
    if (buffer_.empty() && !fill(io_timeout, true)) return;
    if (buffer_.empty())
        throw TestError("the server did not close the connection within " +
                        std::to_string(io_timeout.count()) + " ms");
    throw TestError("expected the server to close the connection, but it sent " +
                    printable(buffer_));
}

void Connection::shut_down_writing() {
    ::shutdown(socket_.get(), SHUT_WR);
}

void Connection::abort() {
    linger reset_on_close{1, 0};
    ::setsockopt(socket_.get(), SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close);
    socket_.reset();
}

std::string line_exchange(Connection& c, std::string_view request) {
    c.send(std::string(request) + "\n");
    return c.read_line();
}

LineGetReply line_get(Connection& c, std::string_view path) {
    LineGetReply reply;
    reply.status_line = line_exchange(c, "GET " + std::string(path));
    if (reply.status_line.starts_with("OK ")) {
        std::string size_text = reply.status_line.substr(3, reply.status_line.size() - 4);
        std::size_t size = parse_size(size_text, reply.status_line);
        reply.body = c.read_exact(size);
    }
    return reply;
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (iequals(key, name)) return value;
    return std::nullopt;
}

HttpResponse read_http_response(Connection& c, bool to_head_request) {
    HttpResponse r;
    std::string head = c.read_until("\r\n\r\n");
    std::size_t line_end = head.find("\r\n");
    r.status_line = head.substr(0, line_end);
    if (!r.status_line.starts_with("HTTP/1.") || r.status_line.size() < 12)
        throw TestError("not an HTTP status line: " + printable(head));
    r.status = static_cast<int>(parse_size(r.status_line.substr(9, 3), r.status_line));

    std::size_t pos = line_end + 2;
    while (pos < head.size() - 2) {
        std::size_t end = head.find("\r\n", pos);
        std::string line = head.substr(pos, end - pos);
        std::size_t colon = line.find(':');
        if (colon == std::string::npos)
            throw TestError("malformed response header: " + printable(line));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        value.erase(value.find_last_not_of(" \t") + 1);
        r.headers.emplace_back(line.substr(0, colon), value);
        pos = end + 2;
    }

    bool bodiless = to_head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304;
    if (bodiless) return r;
    if (std::optional<std::string> length = r.header("Content-Length"))
        r.body = c.read_exact(parse_size(*length, "Content-Length"));
    else
        r.body = c.read_until_eof();
    return r;
}

std::string http_request(std::string_view method, std::string_view target,
                         std::string_view extra_headers, std::string_view version,
                         std::string_view body) {
    std::string request;
    request.append(method).append(" ").append(target).append(" ").append(version).append("\r\n");
    request.append("Host: iolab\r\n").append(extra_headers).append("\r\n").append(body);
    return request;
}

std::string compare_bytes(std::string_view got, std::string_view expected) {
    auto [in_got, in_expected] =
        std::mismatch(got.begin(), got.end(), expected.begin(), expected.end());
    if (in_got == got.end() && in_expected == expected.end()) return "same";
    auto at = static_cast<std::size_t>(in_got - got.begin());
    std::size_t from = at > 16 ? at - 16 : 0;
    return "got " + std::to_string(got.size()) + " bytes, expected " +
           std::to_string(expected.size()) + "; first difference at byte " + std::to_string(at) +
           ": got " + printable(got.substr(from, 48)) + ", expected " +
           printable(expected.substr(from, 48));
}

}  // namespace testkit
