// A pipelined burst: ten thousand requests in one write, answered in order.
//
// The client does not wait for any reply before sending the next request,
// so the server holds many complete requests at once. An event loop must
// answer them all (not just the first of each read), in order, and throttle
// instead of queueing ten thousand replies; a blocking server must not
// deadlock (the client reads while it is still sending, as a real pipelining
// client does).
#include <catch2/catch.hpp>
#include <string>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE("pipelining: 10,000 requests in one write are answered in order", "[pipelining][line]") {
    const DocumentRoot& d = document_root();
    std::string requests, expected;
    for (int i = 0; i < 10'000; ++i) {
        switch (i % 4) {
            case 0:
                requests += "ECHO burst " + std::to_string(i) + "\n";
                expected += "burst " + std::to_string(i) + "\n";
                break;
            case 1:
                requests += "GET hello.txt\n";
                expected += "OK " + std::to_string(d.hello_txt.size()) + "\n" + d.hello_txt;
                break;
            case 2:
                requests += "GET /index.html\r\n";
                expected += "OK " + std::to_string(d.index_html.size()) + "\n" + d.index_html;
                break;
            case 3:
                requests += "GET missing-" + std::to_string(i) + "\n";
                expected += "ERR 404 not found\n";
                break;
        }
    }
    requests += "QUIT\n";
    expected += "BYE\n";

    Server s;
    {
        Connection c = s.connect();
        BackgroundSend sending(c, requests);
        std::string replies = c.read_exact(expected.size());
        CHECK(compare_bytes(replies, expected) == "same");
        c.wait_for_close();
        sending.wait();
    }
    s.check_alive_then_stop();
}

TEST_CASE("pipelining: 10,000 HTTP requests in one write are answered in order",
          "[pipelining][http]") {
    // The HTTP twin of the case above: GETs of two files and of a missing
    // one, then one that asks for the close. RFC 9112 9.3.2: the responses
    // come in the order of the requests. (A server that caps requests per
    // connection, like nginx's keepalive_requests, must allow 10,000.)
    const DocumentRoot& d = document_root();
    constexpr int count = 10'000;
    std::string requests;
    for (int i = 0; i < count; ++i) {
        const std::string target = i % 3 == 0   ? "/hello.txt"
                                   : i % 3 == 1 ? "/index.html"
                                                : "/missing-" + std::to_string(i);
        requests += "GET " + target + " HTTP/1.1\r\nHost: iolab\r\n" +
                    (i == count - 1 ? "Connection: close\r\n" : "") + "\r\n";
    }
    Server s;
    {
        Connection c = s.connect();
        BackgroundSend sending(c, requests);
        int in_order = 0;
        for (int i = 0; i < count; ++i) {
            HttpResponse r = read_http_response(c);
            bool right = i % 3 == 0   ? r.status == 200 && r.body == d.hello_txt
                         : i % 3 == 1 ? r.status == 200 && r.body == d.index_html
                                      : r.status == 404;
            if (!right) {
                INFO("response " << i << ": " << printable(r.status_line) << " "
                                 << printable(r.body));
                CHECK(right);
                break;
            }
            ++in_order;
        }
        CHECK(in_order == count);
        if (in_order == count) c.wait_for_close();
        sending.wait();
    }
    s.check_alive_then_stop();
}
