// Clients that vanish: a reset in the middle of a 64 MiB body, and a close
// right after the request line, twenty times each.
//
// Writing to a connection the peer has reset raises SIGPIPE, which kills a
// process that has not ignored it; the error must instead close that one
// connection and nothing else. And every descriptor the server opened for
// the client (the socket, the file) must be closed again: a leak shows as a
// descriptor count that does not come back down, or as sockets stuck in
// CLOSE_WAIT (the client closed, the server never did).
#include <catch2/catch.hpp>
#include <string>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE("vanishing clients: resets and early closes leave no descriptor behind",
          "[vanishing][resources]") {
    Server s;
    const bool measured = s.measurable();  // with --connect: no /proc to count in
    const std::string request = "GET /body64.bin HTTP/1.1\r\nHost: iolab\r\n\r\n";
    auto nth_request = [&](int i) {
        return i % 2 && !options().http_only ? std::string("GET body64.bin\n") : request;
    };
    // The listening sockets (one per event loop in stage11), counted at rest.
    const int listeners = measured ? open_sockets(s.pid()) : 0;
    // The baseline: the server's own descriptors (listener, spare, epoll,
    // standard streams...) once it has served a client and is at rest again:
    // its only socket is the listener (a forking server's child has exited).
    {
        Connection warm_up = s.connect();
        answers(warm_up, "warm up");
    }
    auto at_rest = [&] {
        return open_sockets(s.pid()) == listeners && close_wait_sockets(s.port()) == 0;
    };
    int fds_before = 0;
    std::string fds_at_start;
    if (measured) {
        REQUIRE(eventually(at_rest));
        fds_before = open_fds(s.pid());
        fds_at_start = describe_fds(s.pid());
    }

    for (int i = 0; i < 20; ++i) {
        Connection c = s.connect();
        c.send(nth_request(i));
        c.read_exact(64 * 1024);  // the body is on its way
        c.abort();                // SO_LINGER {1, 0}, then close: a reset
    }
    for (int i = 0; i < 20; ++i) {
        Connection c = s.connect();
        c.send(nth_request(i));
        c.close();  // gone before the first byte of the reply
    }

    if (measured) {
        bool settled = eventually([&] { return at_rest() && open_fds(s.pid()) == fds_before; });
        INFO("descriptors: " << fds_before << " at rest before, " << open_fds(s.pid())
                             << " after; CLOSE_WAIT sockets on the server's port: "
                             << close_wait_sockets(s.port()));
        INFO("descriptors at rest before:\n"
             << fds_at_start << "and now:\n"
             << describe_fds(s.pid()));
        CHECK(settled);
    } else {
        NOT_CHECKED("no descriptor or CLOSE_WAIT socket is left behind",
                    "--connect: no process to measure");
    }
    s.check_alive_then_stop();
}
