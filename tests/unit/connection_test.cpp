// Connection: Session + Outbox on one nonblocking socket, driven by advance()
// the way the event-loop stages drive it. Tested over a socketpair, with the
// test playing both the event loop and the client.
#include <fcntl.h>
#include <sys/socket.h>

#include <string>

#include "connection.hpp"
#include "unit_support.hpp"

using iolab::Connection;
using iolab::Fd;
using iolab::Interest;
using namespace iolab::test;

namespace {

// The server end goes into a Connection (nonblocking, as the stages set it);
// the client end stays with the test.
struct Wired {
    Fd client;
    Connection connection;
};

Wired wire(const iolab::DocRoot& root, int sndbuf = 0) {
    SocketPair p = make_socketpair();
    REQUIRE(::fcntl(p.a.get(), F_SETFL, ::fcntl(p.a.get(), F_GETFL) | O_NONBLOCK) == 0);
    if (sndbuf > 0) {
        REQUIRE(::setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
        REQUIRE(::setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf) == 0);
    }
    return {std::move(p.b), Connection(std::move(p.a), root)};
}

void send_all(int fd, std::string_view bytes) {
    REQUIRE(iolab::write_all(fd, bytes) == iolab::Io::ok);
}

}  // namespace

TEST_CASE_METHOD(TempRoot, "Connection answers what has arrived and waits for more",
                 "[connection]") {
    auto [client, connection] = wire(docroot());
    CHECK(connection.advance() == Interest::read);  // nothing yet

    send_all(client.get(), "ECHO hi\nGET hello.txt\n");
    CHECK(connection.advance() == Interest::read);  // all answered: wait for the next request
    const std::string expected = "hi\nOK 13\nhello, world\n";
    CHECK(read_exactly(client.get(), expected.size()) == expected);

    send_all(client.get(), "QUIT\nECHO never\n");
    CHECK(connection.advance() == Interest::close);
    CHECK(read_exactly(client.get(), 4) == "BYE\n");
    CHECK(nothing_pending(client.get()));
}

TEST_CASE_METHOD(TempRoot, "Connection answers a half-closed client, then closes", "[connection]") {
    auto [client, connection] = wire(docroot());
    send_all(client.get(), "ECHO a\nECHO b");
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    CHECK(connection.advance() == Interest::close);
    CHECK(read_exactly(client.get(), 4) == "a\nb\n");
}

TEST_CASE_METHOD(TempRoot, "Connection waits for writability when the client reads slowly",
                 "[connection]") {
    const std::string content = pseudo_random_bytes(256 * 1024, 5);
    add_file("big.bin", content);
    auto [client, connection] = wire(docroot(), 4096);

    std::string requests, expected;
    for (int i = 0; i < 20; ++i) {
        requests += "GET big.bin\nECHO " + std::to_string(i) + "\n";
        expected +=
            "OK " + std::to_string(content.size()) + "\n" + content + std::to_string(i) + "\n";
    }
    send_all(client.get(), requests);

    std::string received;
    int writable_waits = 0;
    for (;;) {
        const Interest next = connection.advance();
        REQUIRE(next != Interest::close);
        if (next == Interest::read) break;  // all written: waiting for requests again
        ++writable_waits;                   // the socket is full: the client reads a little
        REQUIRE(writable_waits < 10'000'000);
        received += read_available(client.get(), 32 * 1024);
    }
    received += read_exactly(client.get(), expected.size() - received.size());
    CHECK(writable_waits > 10);
    CHECK(received.size() == expected.size());
    CHECK(first_difference(received, expected) == std::string::npos);
    CHECK(nothing_pending(client.get()));
}
