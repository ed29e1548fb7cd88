// The socket helpers (net.hpp), the descriptor owner (fd.hpp) and the
// `listening on` announcement every server starts with (server.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <thread>

#include "fd.hpp"
#include "net.hpp"
#include "server.hpp"
#include "unit_support.hpp"

using iolab::Accepted;
using iolab::Fd;
using iolab::Io;
using iolab::IoResult;
using namespace iolab::test;

namespace {

Fd connect_to(std::uint16_t port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(s.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    return s;
}

bool close_on_exec(int fd) {
    return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

}  // namespace

TEST_CASE("listen_tcp on port 0 picks a free port, accept_connection takes the client", "[net]") {
    const Fd listener = iolab::listen_tcp("127.0.0.1", 0);
    REQUIRE(listener.valid());
    CHECK(close_on_exec(listener.get()));
    const std::uint16_t port = iolab::local_port(listener.get());
    CHECK(port != 0);

    const Fd client = connect_to(port);
    Accepted accepted = iolab::accept_connection(listener.get());
    REQUIRE(accepted.error == 0);
    REQUIRE(accepted.socket.valid());
    CHECK(close_on_exec(accepted.socket.get()));
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    REQUIRE(::getsockopt(accepted.socket.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
    CHECK(nodelay != 0);  // no Nagle stall between a head and its body

    // The two ends are connected to each other.
    REQUIRE(iolab::write_all(accepted.socket.get(), "ping") == Io::ok);
    CHECK(read_exactly(client.get(), 4) == "ping");
    REQUIRE(iolab::write_all(client.get(), "pong") == Io::ok);
    CHECK(read_exactly(accepted.socket.get(), 4) == "pong");
}

TEST_CASE("accept_connection on an idle nonblocking listener says EAGAIN", "[net]") {
    const Fd listener = iolab::listen_tcp("127.0.0.1", 0);
    iolab::set_nonblocking(listener.get());
    CHECK((::fcntl(listener.get(), F_GETFL) & O_NONBLOCK) != 0);
    const Accepted accepted = iolab::accept_connection(listener.get());
    CHECK(accepted.error == EAGAIN);
    CHECK_FALSE(accepted.socket.valid());
}

TEST_CASE("listen_tcp throws for an address it cannot bind", "[net]") {
    // 192.0.2.1 is TEST-NET-1: a valid address that is not this machine's.
    CHECK_THROWS_AS(iolab::listen_tcp("192.0.2.1", 0), std::system_error);
    const Fd first = iolab::listen_tcp("127.0.0.1", 0);
    CHECK_THROWS_AS(iolab::listen_tcp("127.0.0.1", iolab::local_port(first.get())),
                    std::system_error);
}

TEST_CASE("read_some reports data, would_block and eof", "[net]") {
    auto [a, b] = make_socketpair();
    char buf[64];

    REQUIRE(::write(a.get(), "hello", 5) == 5);
    IoResult r = iolab::read_some(b.get(), buf);
    CHECK(r.status == Io::ok);
    REQUIRE(r.bytes == 5);
    CHECK(std::string(buf, 5) == "hello");

    iolab::set_nonblocking(b.get());
    r = iolab::read_some(b.get(), buf);
    CHECK(r.status == Io::would_block);
    CHECK(r.bytes == 0);

    REQUIRE(::write(a.get(), "abc", 3) == 3);
    r = iolab::read_some(b.get(), std::span<char>(buf, 2));  // no more than asked
    CHECK(r.status == Io::ok);
    CHECK(r.bytes == 2);

    a.reset();
    r = iolab::read_some(b.get(), buf);  // the last byte, then the end
    CHECK(r.status == Io::ok);
    CHECK(r.bytes == 1);
    r = iolab::read_some(b.get(), buf);
    CHECK(r.status == Io::eof);
    CHECK(r.bytes == 0);
}

TEST_CASE("write_some: short writes, would_block, and closed without SIGPIPE", "[net][sigpipe]") {
    DefaultSigpipe sigpipe_kills;
    auto [a, b] = make_socketpair();
    iolab::set_nonblocking(a.get());
    const std::string block(64 * 1024, 'w');
    std::size_t total = 0;
    IoResult r;
    for (int i = 0; i < 10'000; ++i) {
        r = iolab::write_some(a.get(), block);
        if (r.status != Io::ok) break;
        CHECK(r.bytes <= block.size());
        total += r.bytes;
    }
    CHECK(r.status == Io::would_block);  // the socket buffer filled up
    CHECK(total > 0);

    b.reset();
    r = iolab::write_some(a.get(), "after the peer left");
    CHECK(r.status == Io::closed);
}

TEST_CASE("write_all writes everything to a blocking socket", "[net]") {
    auto [a, b] = make_socketpair();
    const std::string data = pseudo_random_bytes(4 * 1024 * 1024, 99);
    std::string received;
    std::thread reader([&, fd = b.get()] {
        char buf[8192];
        ssize_t n;
        while (received.size() < data.size() && (n = ::read(fd, buf, sizeof buf)) > 0) {
            received.append(buf, static_cast<std::size_t>(n));
        }
    });
    const Io status = iolab::write_all(a.get(), data);
    reader.join();
    CHECK(status == Io::ok);
    CHECK(received.size() == data.size());
    CHECK(first_difference(received, data) == std::string::npos);
}

TEST_CASE("write_all to a vanished peer is closed, without SIGPIPE", "[net][sigpipe]") {
    DefaultSigpipe sigpipe_kills;
    auto [a, b] = make_socketpair();
    b.reset();
    CHECK(iolab::write_all(a.get(), "nobody listens") == Io::closed);
}

TEST_CASE("refuse_busy answers 503 and closes", "[net]") {
    SECTION("a line client") {
        auto [server_end, client] = make_socketpair();
        iolab::refuse_busy(std::move(server_end));
        CHECK(read_to_eof(client.get()) == "ERR 503 busy\n");
    }
    SECTION("an HTTP client") {
        auto [server_end, client] = make_socketpair();
        REQUIRE(iolab::write_all(client.get(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n") == Io::ok);
        iolab::refuse_busy(std::move(server_end));
        const std::string reply = read_to_eof(client.get());
        CHECK(reply.starts_with("HTTP/1.1 503 "));
        CHECK(reply.find("\r\n\r\n") != std::string::npos);
    }
}

TEST_CASE("Fd closes its descriptor once, and moves hand ownership over", "[fd]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int read_end = fds[0];
    const int write_end = fds[1];
    {
        Fd owner(read_end);
        Fd moved(std::move(owner));
        CHECK_FALSE(owner.valid());  // NOLINT(bugprone-use-after-move): that is the point
        CHECK(moved.get() == read_end);
        Fd assigned;
        assigned = std::move(moved);
        CHECK(assigned.get() == read_end);
        CHECK(is_open(read_end));
    }
    CHECK_FALSE(is_open(read_end));  // closed when its last owner went away

    Fd keeper(write_end);
    CHECK(keeper.release() == write_end);
    CHECK_FALSE(keeper.valid());
    CHECK(is_open(write_end));  // release() gives it up without closing
    ::close(write_end);
}

TEST_CASE("announce_listening prints the real port on stdout", "[server]") {
    const Fd listener = iolab::listen_tcp("127.0.0.1", 0);
    iolab::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;  // as with --port 0: the real port must be printed
    CapturedOutput out(STDOUT_FILENO);
    iolab::announce_listening(options, listener.get());
    const std::string text = out.finish();
    CHECK(text ==
          "listening on 127.0.0.1:" + std::to_string(iolab::local_port(listener.get())) + "\n");
}
