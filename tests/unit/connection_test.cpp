// Connection: Session + Outbox on one nonblocking socket, driven by advance()
// the way the event-loop stages drive it. Tested over a socketpair, with the
// test playing both the event loop and the client.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "connection.hpp"
#include "unit_support.hpp"

using iolab::Connection;
using iolab::Drain;
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

Wired wire(const iolab::DocRoot& root, Drain drain, int sndbuf = 0) {
    SocketPair p = make_socketpair();
    REQUIRE(::fcntl(p.a.get(), F_SETFL, ::fcntl(p.a.get(), F_GETFL) | O_NONBLOCK) == 0);
    if (sndbuf > 0) {
        REQUIRE(::setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
        REQUIRE(::setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf) == 0);
    }
    return {std::move(p.b), Connection(std::move(p.a), root, drain)};
}

void send_all(int fd, std::string_view bytes) {
    REQUIRE(iolab::write_all(fd, bytes) == iolab::Io::ok);
}

// How many read() calls this thread has made so far: syscr in
// /proc/thread-self/io (proc(5)). The kernel counts every read(), the ones
// that fail with EAGAIN too (vfs_read() counts before it returns), and the
// read() of the file itself after it has taken the snapshot. Nothing if the
// kernel keeps no such count (CONFIG_TASK_IO_ACCOUNTING off).
std::optional<long> reads_so_far() {
    Fd io(::open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC));
    if (!io) return std::nullopt;
    char text[1024];
    ssize_t n = ::read(io.get(), text, sizeof text - 1);
    if (n <= 0) return std::nullopt;
    text[n] = '\0';
    const char* field = std::strstr(text, "syscr: ");
    if (field == nullptr) return std::nullopt;
    return std::strtol(field + 7, nullptr, 10);
}

// The read() calls that step() made. Its only reads must be the
// Connection's: echo requests, no files.
template <typename Step>
std::optional<long> reads_in(Step&& step) {
    std::optional<long> before = reads_so_far();
    step();
    std::optional<long> after = reads_so_far();
    if (!before || !after) return std::nullopt;
    return *after - *before - 1;  // less the read() that took the first snapshot
}

// Runs advance() and says how many read() calls it made (-1: not counted here).
Interest advance_counting(Connection& connection, long& reads) {
    Interest interest = Interest::close;
    std::optional<long> counted = reads_in([&] { interest = connection.advance(); });
    reads = counted.value_or(-1);
    return interest;
}

// Whether this kernel counts read() calls the way reads_in() expects: a
// step that reads nothing counts zero, one that reads once counts one.
bool reads_counted() {
    std::optional<long> none = reads_in([] {});
    char byte;
    std::optional<long> one = reads_in([&] {
        Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        REQUIRE(::read(null.get(), &byte, 1) == 0);
    });
    if (!none || !one) {
        WARN("no read() counts in /proc/thread-self/io: only the behaviour is checked");
        return false;
    }
    REQUIRE(*none == 0);
    REQUIRE(*one == 1);
    return true;
}

}  // namespace

TEST_CASE_METHOD(TempRoot, "Connection answers what has arrived and waits for more",
                 "[connection]") {
    const Drain drain = GENERATE(Drain::until_eagain, Drain::until_short_read);
    auto [client, connection] = wire(docroot(), drain);
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
    auto [client, connection] = wire(docroot(), Drain::until_eagain);
    send_all(client.get(), "ECHO a\nECHO b");
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    CHECK(connection.advance() == Interest::close);
    CHECK(read_exactly(client.get(), 4) == "a\nb\n");
}

TEST_CASE_METHOD(TempRoot, "Connection waits for writability when the client reads slowly",
                 "[connection]") {
    const std::string content = pseudo_random_bytes(256 * 1024, 5);
    add_file("big.bin", content);
    // Both drains: a level-triggered connection too must answer the
    // requests it has already read, though no read() comes between.
    const Drain drain = GENERATE(Drain::until_eagain, Drain::until_short_read);
    auto [client, connection] = wire(docroot(), drain, 4096);

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

// The two drains differ in the read() calls they make, so these tests count
// them, and in when they see an EOF that came with the last bytes, which
// shows even where the calls cannot be counted.

TEST_CASE_METHOD(TempRoot, "Drain::until_eagain reads until EAGAIN, and so meets the EOF at once",
                 "[connection]") {
    const bool counted = reads_counted();
    auto [client, connection] = wire(docroot(), Drain::until_eagain);
    long reads = 0;

    send_all(client.get(), "ECHO a\n");
    CHECK(advance_counting(connection, reads) == Interest::read);
    if (counted) CHECK(reads == 2);  // the request, then EAGAIN
    CHECK(read_exactly(client.get(), 2) == "a\n");

    send_all(client.get(), "ECHO b\n");
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    CHECK(advance_counting(connection, reads) == Interest::close);
    if (counted) CHECK(reads == 2);  // the request, then the EOF
    CHECK(read_exactly(client.get(), 2) == "b\n");
}

TEST_CASE_METHOD(
    TempRoot, "Drain::until_short_read stops at a short read and leaves the EOF to the next turn",
    "[connection]") {
    const bool counted = reads_counted();
    auto [client, connection] = wire(docroot(), Drain::until_short_read);
    long reads = 0;

    send_all(client.get(), "ECHO a\nECHO b\n");
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    // One read() took both requests, fewer bytes than asked for: both are
    // answered, and the EOF behind them is left for the level to report.
    CHECK(advance_counting(connection, reads) == Interest::read);
    if (counted) CHECK(reads == 1);
    CHECK(read_exactly(client.get(), 4) == "a\nb\n");
    // The socket is still readable (the EOF): the loop calls again.
    CHECK(advance_counting(connection, reads) == Interest::close);
    if (counted) CHECK(reads == 1);
    CHECK(read_to_eof(client.get()).empty());
}

TEST_CASE_METHOD(TempRoot, "Drain::until_short_read goes on reading while reads fill its buffer",
                 "[connection]") {
    const bool counted = reads_counted();
    auto [client, connection] = wire(docroot(), Drain::until_short_read);
    long reads = 0;

    // 40,000 bytes: more than two of advance()'s 16 KiB reads. A full read
    // says nothing about what is left, so it must read on: 16 KiB, 16 KiB,
    // then the short 7,232 bytes that end its turn. Long lines, so that the
    // 40 replies fit the socket's send buffer.
    std::string requests, replies;
    for (int i = 0; i < 40; ++i) {
        std::string word = std::to_string(i) + std::string(994 - std::to_string(i).size(), 'x');
        requests += "ECHO " + word + "\n";  // 1,000 bytes
        replies += word + "\n";
    }
    REQUIRE(requests.size() == 40'000);
    send_all(client.get(), requests);
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    CHECK(advance_counting(connection, reads) == Interest::read);  // every reply fit the socket
    if (counted) CHECK(reads == 3);
    CHECK(read_exactly(client.get(), replies.size()) == replies);
    CHECK(advance_counting(connection, reads) == Interest::close);
}
