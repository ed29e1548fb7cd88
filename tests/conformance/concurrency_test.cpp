// Several clients: who gets served when, and what one bad client may cost
// the others (nothing but its own connection).
//
// These are properties of the I/O model, not timings: a serial server (the
// --serial expectation, stage01) must make a second client wait, and every
// other model must not. The waits below only have to be long enough to see
// a reply that is not going to come.
#include <catch2/catch.hpp>
#include <string>

#include "client.hpp"
#include "conformance.hpp"

using namespace conformance;

namespace {

// A request whose reply says who asked, in the line protocol (ECHO WORD);
// with --http-only, GET /hello.txt, which only says that it was answered.
std::string request_for(const std::string& word) {
    return options().http_only ? http_request("GET", "/hello.txt") : "ECHO " + word + "\n";
}
std::string expected_for(const std::string& word) {
    return options().http_only ? document_root().hello_txt : word + "\n";
}
std::string read_reply(Connection& c) {
    return options().http_only ? read_http_response(c).body : c.read_line();
}
std::string exchange(Connection& c, const std::string& word) {
    c.send(request_for(word));
    return read_reply(c);
}

// A large download: GET big.bin (64 MiB), as a line or over HTTP.
std::string big_get() {
    return options().http_only ? http_request("GET", "/big.bin") : "GET big.bin\n";
}

// The check every test case below ends with: a newcomer is served in full.
void check_next_client_is_served(ServerProcess& s) {
    Connection next = s.connect();
    std::string reply = exchange(next, "next client");
    CHECK(printable(reply) == printable(expected_for("next client")));
    if (options().http_only) return;
    LineGetReply hello = line_get(next, "hello.txt");
    CHECK(compare_bytes(hello.body, document_root().hello_txt) == "same");
}

}  // namespace

TEST_CASE("concurrency: a serial server serves a second client only after the first leaves",
          "[concurrency]") {
    if (!expect().serial) {
        SUCCEED("not expected of this server: it is concurrent (no --serial)");
        return;
    }
    ServerProcess& s = server();
    Connection first = s.connect();
    std::string first_reply = exchange(first, "first");
    CHECK(printable(first_reply) == printable(expected_for("first")));

    Connection second = s.connect();  // accepted by the kernel's backlog, not by the server
    second.send(request_for("second"));
    std::string too_early = second.read_for(300ms);
    REQUIRE(printable(too_early) == printable(""));  // not while the first is here
    std::string first_again = exchange(first, "first again");
    CHECK(printable(first_again) == printable(expected_for("first again")));

    first.close();
    std::string second_reply = read_reply(second);
    CHECK(printable(second_reply) == printable(expected_for("second")));
}

TEST_CASE("concurrency: two clients connected at once are both served", "[concurrency]") {
    if (expect().serial) {
        SUCCEED("not expected of this server: it serves one client at a time (--serial)");
        return;
    }
    ServerProcess& s = server();
    Connection first = s.connect();
    std::string first_reply = exchange(first, "first");
    CHECK(printable(first_reply) == printable(expected_for("first")));
    // The first client is in the middle of a request.
    const std::string half = request_for("half of a request");
    first.send(half.substr(0, half.size() - 4));

    Connection second = s.connect();
    std::string second_reply = exchange(second, "second");
    CHECK(printable(second_reply) == printable(expected_for("second")));

    first.send(half.substr(half.size() - 4));
    std::string first_completed = read_reply(first);
    CHECK(printable(first_completed) == printable(expected_for("half of a request")));
    std::string second_again = exchange(second, "second again");
    CHECK(printable(second_again) == printable(expected_for("second again")));
}

TEST_CASE("concurrency: a client that never reads its replies does not stall the others",
          "[concurrency]") {
    if (expect().serial) {
        SUCCEED("not expected of this server: it serves one client at a time (--serial)");
        return;
    }
    ServerProcess& s = server();
    Connection hog = s.connect();
    std::string requests;
    for (int i = 0; i < 8; ++i)
        requests += big_get();  // 512 MiB of replies, never read
    hog.send(requests);
    hog.read_exact(3);  // the server has started on it

    check_next_client_is_served(s);
    hog.close();  // with unread bytes: a reset
    check_next_client_is_served(s);
}

TEST_CASE("robustness: a client that vanishes costs only its own connection", "[robustness]") {
    ServerProcess& s = server();
    SECTION("closing in the middle of a 64 MiB download") {
        Connection gone = s.connect();
        gone.send(big_get());
        gone.read_exact(64 * 1024);
        gone.close();
    }
    SECTION("resetting in the middle of a 64 MiB HTTP download") {
        Connection gone = s.connect();
        gone.send(http_request("GET", "/big.bin"));
        gone.read_exact(64 * 1024);
        gone.abort();
    }
    SECTION("closing with 8 large requests pipelined and unread") {
        Connection gone = s.connect();
        std::string requests;
        for (int i = 0; i < 8; ++i)
            requests += big_get();
        gone.send(requests);
        gone.read_exact(3);
        gone.close();
    }
    SECTION("closing halfway through a request line") {
        Connection gone = s.connect();
        gone.send(options().http_only ? "GET /hel" : "GET hel");
        gone.close();
    }
    SECTION("closing halfway through HTTP headers") {
        Connection gone = s.connect();
        gone.send("GET /hello.txt HTTP/1.1\r\nHost: io");
        gone.close();
    }
    SECTION("closing halfway through a POST body") {
        Connection gone = s.connect();
        gone.send(
            http_request("POST", "/echo", "Content-Length: 1000\r\n", "HTTP/1.1", "only a bit"));
        gone.close();
    }
    SECTION("connecting and leaving without a byte") {
        Connection gone = s.connect();
        gone.close();
    }
    check_next_client_is_served(s);
}
