// Lingering close: an error reply that ends the connection must reach the
// client even when the client has sent more that the server never read.
//
// Closing a socket that still has unread bytes makes the kernel send a
// reset (RFC 1122 4.2.2.13), and a reset can overtake the reply: the client
// sees ECONNRESET where the error message should have been. The cure is to
// shut down writing first and read (and discard) what the client still sends
// for a moment before closing. The client here sends the bad request and
// 256 KiB of junk in one go, then reads.
#include <catch2/catch.hpp>
#include <string>

#include "adversarial.hpp"

using namespace adversarial;

namespace {

// 256 KiB of requests that must never be answered.
std::string junk() {
    std::string bytes;
    while (bytes.size() < 256 * 1024)
        bytes += "ECHO junk that must never be answered\n";
    return bytes;
}

}  // namespace

TEST_CASE("lingering close: an error reply survives the junk the client sent after it",
          "[lingering-close]") {
    Server s;
    for (int round = 0; round < 5; ++round) {
        INFO("round " << round);
        if (!options().http_only) {
            INFO("a line over 8 KiB (ERR 414), then junk");
            Connection c = s.connect();
            BackgroundSend sending(c, "ECHO " + std::string(9000, 'x') + "\n" + junk(), true);
            std::string reply = c.read_line();
            CHECK(printable(reply) == printable("ERR 414 line too long\n"));
            c.wait_for_close();
            sending.wait();
        }
        {
            INFO("HTTP/1.1 without Host (400), then junk");
            Connection c = s.connect();
            BackgroundSend sending(c, "GET /hello.txt HTTP/1.1\r\n\r\n" + junk(), true);
            HttpResponse r = read_http_response(c);
            CHECK(r.status == 400);
            // The whole body arrived (read_http_response() read Content-Length
            // bytes, which a reset would have cut short); its words are the
            // server's own (RFC 9110 15.5: an explanation SHOULD be sent).
            CHECK(r.header("Content-Length").has_value());
            CHECK(!r.body.empty());
            c.wait_for_close();
            sending.wait();
        }
    }
    if (options().http_only) NOT_CHECKED("ERR 414 then junk", "--http-only");
    s.check_alive_then_stop();
}
