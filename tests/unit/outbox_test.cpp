// Outbox: queued responses written to a socket, in order, byte for byte,
// resuming where a full socket stopped it. Tested over a socketpair.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "outbox.hpp"
#include "unit_support.hpp"

using iolab::BodySender;
using iolab::Io;
using iolab::IoResult;
using iolab::Outbox;
using iolab::Response;
using namespace iolab::test;

namespace {

Response head_only(std::string head, bool close_after = false) {
    Response r;
    r.head = std::move(head);
    r.close_after = close_after;
    return r;
}

Response with_file(std::string head, const std::string& path, off_t offset, std::uint64_t length) {
    Response r;
    r.head = std::move(head);
    r.file = open_for_reading(path);
    r.file_offset = offset;
    r.file_length = length;
    return r;
}

// A socketpair whose sending end `a` is nonblocking with buffers as small as
// the kernel allows, so a large response fills it many times over.
SocketPair small_nonblocking_pair() {
    SocketPair p = make_socketpair();
    const int size = 4096;
    REQUIRE(::setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
    REQUIRE(::setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
    REQUIRE(::fcntl(p.a.get(), F_SETFL, ::fcntl(p.a.get(), F_GETFL) | O_NONBLOCK) == 0);
    return p;
}

struct Delivery {
    std::string received;
    Io last = Io::ok;
    int would_blocks = 0;           // how often flush() had to stop
    std::size_t most_buffered = 0;  // the largest buffered_bytes() seen
};

// Flushes `box` into `sender`, and whenever the socket is full, drains the
// receiving end a little (`step` bytes at most), like a slow client. Stops
// when flush() returns ok (then reads the rest, `expected` bytes in all) or closed.
Delivery deliver(Outbox& box, int sender, int receiver, std::size_t expected,
                 std::size_t step = 16 * 1024) {
    Delivery d;
    for (;;) {
        d.last = box.flush(sender);
        d.most_buffered = std::max(d.most_buffered, box.buffered_bytes());
        if (d.last != Io::would_block) break;
        ++d.would_blocks;
        REQUIRE(d.would_blocks < 10'000'000);
        d.received += read_available(receiver, step);
    }
    if (d.last == Io::ok && d.received.size() < expected) {
        d.received += read_exactly(receiver, expected - d.received.size());
    }
    return d;
}

}  // namespace

TEST_CASE_METHOD(TempRoot, "Outbox sends the head, then the file region, byte for byte",
                 "[outbox]") {
    auto [sender, receiver] = make_socketpair();
    const std::string hello = root_path() + "/hello.txt";
    Outbox box;
    CHECK(box.empty());

    SECTION("the whole file") {
        box.push(with_file("OK 13\n", hello, 0, 13));
        CHECK_FALSE(box.empty());
        REQUIRE(box.flush(sender.get()) == Io::ok);
        CHECK(read_exactly(receiver.get(), 19) == "OK 13\nhello, world\n");
    }
    SECTION("a region from an offset") {
        box.push(with_file("part:", hello, 7, 5));
        REQUIRE(box.flush(sender.get()) == Io::ok);
        CHECK(read_exactly(receiver.get(), 10) == "part:world");
    }
    SECTION("a file with no head") {
        box.push(with_file("", hello, 0, 13));
        REQUIRE(box.flush(sender.get()) == Io::ok);
        CHECK(read_exactly(receiver.get(), 13) == kHello);
    }
    CHECK(box.empty());
    CHECK(box.buffered_bytes() == 0);
    CHECK(nothing_pending(receiver.get()));  // not one byte more
    CHECK_FALSE(box.closing());
}

TEST_CASE_METHOD(TempRoot, "Queued responses go out in order", "[outbox]") {
    auto [sender, receiver] = make_socketpair();
    const std::string hello = root_path() + "/hello.txt";
    Outbox box;
    box.push(head_only("first\n"));
    box.push(with_file("OK 5\n", hello, 7, 5));
    box.push(head_only("third\n"));
    box.push(with_file("OK 13\n", hello, 0, 13));
    box.push(head_only("BYE\n", /*close_after=*/true));
    CHECK(box.buffered_bytes() >= std::string("first\nOK 5\nthird\nOK 13\nBYE\n").size());

    REQUIRE(box.flush(sender.get()) == Io::ok);
    const std::string expected = "first\nOK 5\nworldthird\nOK 13\nhello, world\nBYE\n";
    CHECK(read_exactly(receiver.get(), expected.size()) == expected);
    CHECK(nothing_pending(receiver.get()));
    CHECK(box.empty());
    CHECK(box.closing());
}

TEST_CASE_METHOD(TempRoot, "A large body on a full socket resumes exactly where it stopped",
                 "[outbox]") {
    const std::string content = pseudo_random_bytes(4 * 1024 * 1024, 2024);
    const std::string path = add_file("big.bin", content);
    auto [sender, receiver] = small_nonblocking_pair();
    Outbox box;

    SECTION("the whole file") {
        const std::string head = "OK " + std::to_string(content.size()) + "\n";
        box.push(with_file(head, path, 0, content.size()));
        const std::string expected = head + content;
        const Delivery d = deliver(box, sender.get(), receiver.get(), expected.size());
        REQUIRE(d.last == Io::ok);
        CHECK(d.would_blocks > 10);  // the socket really was full, many times
        CHECK(d.received.size() == expected.size());
        CHECK(first_difference(d.received, expected) == std::string::npos);
        // The body is copied a chunk at a time, never loaded whole.
        CHECK(d.most_buffered <= Outbox::copy_chunk + head.size());
    }
    SECTION("a region in the middle, between two other responses") {
        const off_t offset = 1'234'567;
        const std::size_t length = 2'000'000;
        box.push(head_only("before\n"));
        box.push(with_file("region\n", path, offset, length));
        box.push(head_only("after\n"));
        const std::string expected = "before\nregion\n" +
                                     content.substr(static_cast<std::size_t>(offset), length) +
                                     "after\n";
        const Delivery d = deliver(box, sender.get(), receiver.get(), expected.size(), 5000);
        REQUIRE(d.last == Io::ok);
        CHECK(d.would_blocks > 10);
        CHECK(d.received.size() == expected.size());
        CHECK(first_difference(d.received, expected) == std::string::npos);
    }
    CHECK(box.empty());
    CHECK(nothing_pending(receiver.get()));
}

TEST_CASE("Outbox::closing() reports a queued close_after response", "[outbox]") {
    auto [sender, receiver] = make_socketpair();
    Outbox box;
    box.push(head_only("one\n"));
    CHECK_FALSE(box.closing());
    REQUIRE(box.flush(sender.get()) == Io::ok);
    CHECK_FALSE(box.closing());
    box.push(head_only("BYE\n", /*close_after=*/true));
    CHECK(box.closing());
    REQUIRE(box.flush(sender.get()) == Io::ok);
    CHECK(box.closing());  // still true: the caller closes once flush() is ok
    CHECK(read_exactly(receiver.get(), 8) == "one\nBYE\n");
}

TEST_CASE_METHOD(TempRoot, "A vanished peer makes flush() return closed, never SIGPIPE",
                 "[outbox][sigpipe]") {
    // SIGPIPE keeps its default action (terminate): if the Outbox wrote
    // without MSG_NOSIGNAL, this test program would die right here.
    DefaultSigpipe sigpipe_kills;
    const std::string hello = root_path() + "/hello.txt";
    Outbox box;

    SECTION("while writing a head") {
        auto [sender, receiver] = make_socketpair();
        receiver.reset();
        box.push(head_only("hello\n"));
        CHECK(box.flush(sender.get()) == Io::closed);
    }
    SECTION("while writing a file body") {
        auto [sender, receiver] = make_socketpair();
        receiver.reset();
        box.push(with_file("", hello, 0, 13));
        CHECK(box.flush(sender.get()) == Io::closed);
    }
    SECTION("in the middle of a large transfer") {
        const std::string path = add_file("big.bin", pseudo_random_bytes(4 * 1024 * 1024, 1));
        auto [sender, receiver] = small_nonblocking_pair();
        box.push(with_file("OK 4194304\n", path, 0, 4 * 1024 * 1024));
        REQUIRE(box.flush(sender.get()) == Io::would_block);
        CHECK_FALSE(read_available(receiver.get(), 1000).empty());
        receiver.reset();
        CHECK(box.flush(sender.get()) == Io::closed);
    }
}

TEST_CASE_METHOD(TempRoot, "A file that is shorter than its region ends the connection",
                 "[outbox]") {
    // The file was truncated after the response was made: the promised
    // length can no longer be sent, so the framing is lost.
    auto [sender, receiver] = make_socketpair();
    Outbox box;
    box.push(with_file("OK 100\n", add_file("short.txt", "only 20 bytes here.\n"), 0, 100));
    CHECK(box.flush(sender.get()) == Io::closed);
}

TEST_CASE("Outbox::full() is the high-water mark", "[outbox]") {
    SECTION("by number of responses") {
        auto [sender, receiver] = make_socketpair();
        Outbox box;
        box.push(head_only("x\n"));
        CHECK_FALSE(box.full());
        for (std::size_t i = 1; i <= Outbox::max_queued_responses; ++i)
            box.push(head_only("x\n"));
        CHECK(box.full());  // max_queued_responses + 1 queued
        REQUIRE(box.flush(sender.get()) == Io::ok);
        CHECK(box.empty());
        CHECK_FALSE(box.full());
    }
    SECTION("by bytes") {
        Outbox box;
        box.push(head_only(std::string(Outbox::high_water_bytes + 1, 'h')));
        CHECK(box.buffered_bytes() == Outbox::high_water_bytes + 1);
        CHECK(box.full());
    }
}

namespace {

// A BodySender of our own, as stage08 plugs in sendfile: it sends the file
// region in 1000-byte steps with pread + send, and counts its calls.
class SmallStepSender : public BodySender {
public:
    explicit SmallStepSender(int* calls) : calls_(calls) {}

    IoResult send_body(int socket, Response& r, std::size_t max_bytes) override {
        ++*calls_;
        most_asked = std::max(most_asked, max_bytes);
        least_asked = std::min(least_asked, max_bytes);
        char buf[1000];
        const std::size_t want = std::min<std::uint64_t>({sizeof buf, r.file_length, max_bytes});
        const ssize_t got = ::pread(r.file.get(), buf, want, r.file_offset);
        if (got <= 0) return {0, Io::closed};
        const ssize_t sent = ::send(socket, buf, static_cast<std::size_t>(got), MSG_NOSIGNAL);
        if (sent < 0) return {0, errno == EAGAIN ? Io::would_block : Io::closed};
        r.file_offset += sent;
        r.file_length -= static_cast<std::uint64_t>(sent);
        return {static_cast<std::size_t>(sent), Io::ok};
    }

    std::size_t least_asked = SIZE_MAX, most_asked = 0;  // the max_bytes seen

private:
    int* calls_;
};

}  // namespace

TEST_CASE_METHOD(TempRoot, "A custom BodySender carries the file bodies", "[outbox]") {
    const std::string content = pseudo_random_bytes(50'000, 3);
    const std::string path = add_file("body.bin", content);
    auto [sender, receiver] = small_nonblocking_pair();
    int calls = 0;
    Outbox box(std::make_unique<SmallStepSender>(&calls));
    box.push(with_file("head\n", path, 100, 40'000));
    box.push(head_only("next\n"));
    const std::string expected = "head\n" + content.substr(100, 40'000) + "next\n";
    const Delivery d = deliver(box, sender.get(), receiver.get(), expected.size(), 3000);
    REQUIRE(d.last == Io::ok);
    CHECK(calls >= 40);  // 40'000 bytes in steps of at most 1000
    CHECK(d.received.size() == expected.size());
    CHECK(first_difference(d.received, expected) == std::string::npos);
}

// A socket that never fills (the reader keeps up) must not keep one client's
// flush() going until its whole file is sent: the budget ends the turn, and
// the next flush() resumes exactly where this one stopped.
TEST_CASE_METHOD(TempRoot, "A write budget ends a flush early, and the next resumes in step",
                 "[outbox]") {
    const std::string content = pseudo_random_bytes(200'000, 5);
    const std::string path = add_file("budget.bin", content);
    // The default socketpair buffers hold more than one budget: the socket
    // is never full within a turn, so only the budget can stop it.
    auto [sender, receiver] = make_socketpair();
    REQUIRE(::fcntl(sender.get(), F_SETFL, ::fcntl(sender.get(), F_GETFL) | O_NONBLOCK) == 0);
    const std::size_t budget = 5000;
    const std::string expected = "head\n" + content + "tail\n";
    std::string received;
    int turns = 0;
    // Everything the socket holds now, without waiting: a reader that keeps up.
    auto drain = [&received, fd = receiver.get()] {
        char buf[64 * 1024];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            received.append(buf, static_cast<std::size_t>(n));
    };

    // Flushes turn after turn until all is sent: each turn stops at the
    // budget exactly (the socket never fills), and never goes past it.
    auto send_in_turns = [&](Outbox& box) {
        box.push(with_file("head\n", path, 0, content.size()));
        box.push(head_only("tail\n"));
        Io last = Io::would_block;
        while (last == Io::would_block) {
            REQUIRE(++turns < 1000);
            const std::uint64_t before = box.sent();
            last = box.flush(sender.get(), budget);
            const std::uint64_t this_turn = box.sent() - before;
            CHECK(this_turn <= budget);
            if (last == Io::would_block) CHECK(this_turn == budget);
            drain();
        }
        REQUIRE(last == Io::ok);
    };

    SECTION("the copy path (head and body through the Outbox's own buffer)") {
        Outbox box;
        send_in_turns(box);
    }
    SECTION("a BodySender is never asked for more than the budget left") {
        int calls = 0;
        auto owned = std::make_unique<SmallStepSender>(&calls);
        SmallStepSender& step = *owned;
        Outbox box(std::move(owned));
        send_in_turns(box);
        CHECK(step.most_asked <= budget);
        CHECK(step.least_asked >= 1);
    }
    drain();
    CHECK(turns >= static_cast<int>(expected.size() / budget));  // about 40 turns, not one
    REQUIRE(received.size() == expected.size());
    CHECK(first_difference(received, expected) == std::string::npos);
}
