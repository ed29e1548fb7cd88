// A request line that never ends: 1 MiB and no newline.
//
// The server must not buffer it (a client could send gigabytes): past 8 KiB
// it answers ERR 414 (HTTP 414 if the line looks like HTTP) and closes,
// without waiting for a newline that is not coming, and its memory does not
// grow with what the client sends.
#include <catch2/catch.hpp>
#include <string>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE("long line: 1 MiB without a newline gets 414 and a close; memory stays bounded",
          "[limits]") {
    constexpr std::size_t mebibyte = std::size_t{1} << 20;
    constexpr long allowed_growth_kib = 8 * 1024;
    Server s;
    {
        Connection warm_up = s.connect();  // the first client's allocations are not growth
        answers(warm_up, "warm up");
    }
    long memory_before = s.measurable() ? memory_kib(s.pid()) : 0;

    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        if (!options().http_only) {
            Connection c = s.connect();
            BackgroundSend sending(c, "ECHO " + std::string(mebibyte, 'x'), true);
            std::string reply = c.read_line();
            CHECK(printable(reply) == printable("ERR 414 line too long\n"));
            c.wait_for_close();
            sending.wait();
        }
        {
            Connection c = s.connect();
            BackgroundSend sending(c, "GET /" + std::string(mebibyte, 'u'), true);
            HttpResponse r = read_http_response(c);
            CHECK(r.status == 414);
            CHECK(r.header("Connection").value_or("(none)") == "close");
            c.wait_for_close();
            sending.wait();
        }
    }
    if (s.measurable()) {
        long grown = memory_kib(s.pid()) - memory_before;
        INFO("server memory grew by " << grown << " KiB after 6 MiB of endless lines");
        CHECK(grown < allowed_growth_kib);
    } else {
        NOT_CHECKED("the server's memory stays bounded", "--connect: no process to measure");
    }
    if (options().http_only) NOT_CHECKED("a line over 8 KiB gets ERR 414", "--http-only");
    s.check_alive_then_stop();
}
