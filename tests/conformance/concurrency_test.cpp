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

// The check every test case below ends with: a newcomer is served in full.
void check_next_client_is_served(ServerProcess& s) {
    Connection next = s.connect();
    std::string reply = line_exchange(next, "ECHO next client");
    CHECK(printable(reply) == printable("next client\n"));
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
    std::string first_reply = line_exchange(first, "ECHO first");
    CHECK(printable(first_reply) == printable("first\n"));

    Connection second = s.connect();  // accepted by the kernel's backlog, not by the server
    second.send("ECHO second\n");
    std::string too_early = second.read_for(300ms);
    REQUIRE(printable(too_early) == printable(""));  // not while the first is here
    std::string first_again = line_exchange(first, "ECHO first again");
    CHECK(printable(first_again) == printable("first again\n"));

    first.close();
    std::string second_reply = second.read_line();
    CHECK(printable(second_reply) == printable("second\n"));
}

TEST_CASE("concurrency: two clients connected at once are both served", "[concurrency]") {
    if (expect().serial) {
        SUCCEED("not expected of this server: it serves one client at a time (--serial)");
        return;
    }
    ServerProcess& s = server();
    Connection first = s.connect();
    std::string first_reply = line_exchange(first, "ECHO first");
    CHECK(printable(first_reply) == printable("first\n"));
    first.send("ECHO half of a req");  // the first client is in the middle of a request

    Connection second = s.connect();
    std::string second_reply = line_exchange(second, "ECHO second");
    CHECK(printable(second_reply) == printable("second\n"));

    first.send("uest\n");
    std::string first_completed = first.read_line();
    CHECK(printable(first_completed) == printable("half of a request\n"));
    std::string second_again = line_exchange(second, "ECHO second again");
    CHECK(printable(second_again) == printable("second again\n"));
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
        requests += "GET big.bin\n";  // 512 MiB of replies, never read
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
        gone.send("GET big.bin\n");
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
            requests += "GET big.bin\n";
        gone.send(requests);
        gone.read_exact(3);
        gone.close();
    }
    SECTION("closing halfway through a request line") {
        Connection gone = s.connect();
        gone.send("GET hel");
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
