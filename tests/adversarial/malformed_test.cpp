// Malformed HTTP requests, and request smuggling.
//
// Each bad request is followed, in the same write, by a well-formed one.
// A request whose framing cannot be trusted (two Content-Lengths, one plus
// a Transfer-Encoding, an absurd length, bytes that have no place in a
// request line) must be refused with `Connection: close` and the connection
// closed: whatever follows it was never meant to be a request of ours, and
// a server answering it is one that a proxy in front, reading the framing
// differently, could be made to "smuggle" requests through. A request that
// is only wrong in its target (a bad percent-escape) is framed correctly:
// its 400 may keep the connection, and then the next request is answered.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "adversarial.hpp"

using namespace adversarial;

namespace {

const std::string smuggled = "GET /hello.txt HTTP/1.1\r\nHost: iolab\r\n\r\n";

struct Case {
    const char* what;
    std::string request;        // sent with `smuggled` right behind it
    std::vector<int> statuses;  // any of these
    bool must_close = true;
    // The RFC also lets a server take this POST /echo as well framed (a
    // chunked body, RFC 9112 7.1; a control byte other than CR, LF or NUL
    // in a value, RFC 9110 5.5): then it is answered like any POST /echo
    // (200, or 404/405 with --no-echo) and the next request must be too.
    bool may_be_processed = false;
};

std::string post(const std::string& headers, const std::string& body) {
    return "POST /echo HTTP/1.1\r\nHost: iolab\r\n" + headers + "\r\n" + body;
}

std::vector<Case> malformed_requests() {
    const std::string host = "Host: iolab\r\n\r\n";
    return {
        {"a control byte in the target", "GET /hel\x01lo.txt HTTP/1.1\r\n" + host, {400}},
        {"a NUL in the target", std::string("GET /hello\0.txt HTTP/1.1\r\n", 26) + host, {400}},
        {"DEL in the method", "G\x7fT /hello.txt HTTP/1.1\r\n" + host, {400}},
        {"an escape sequence in the target", "GET /\x1b[2J HTTP/1.1\r\n" + host, {400}},
        {"a lone CR in the request line", "GET /hello.txt\rX HTTP/1.1\r\n" + host, {400}},
        {"HTTP/2.0", "GET /hello.txt HTTP/2.0\r\n" + host, {505}},
        {"HTTP/3.0", "GET /hello.txt HTTP/3.0\r\n" + host, {505}},
        {"a version that is not x.y", "GET /hello.txt HTTP/1.1.1\r\n" + host, {400, 505}},
        {"HTTP/1.1 without Host", "GET /hello.txt HTTP/1.1\r\n\r\n", {400}},
        {"two Host headers", "GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}},
        {"a Content-Length of 20 digits",
         post("Content-Length: 99999999999999999999\r\n", ""),
         {400, 413}},
        {"a Content-Length of 2^64",
         post("Content-Length: 18446744073709551616\r\n", ""),
         {400, 413}},
        {"a negative Content-Length", post("Content-Length: -1\r\n", ""), {400}},
        {"a Content-Length with a plus sign", post("Content-Length: +5\r\n", "hello"), {400}},
        {"a Content-Length in hex", post("Content-Length: 0x5\r\n", "hello"), {400}},
        {"a Content-Length list", post("Content-Length: 5, 5\r\n", "hello"), {400}},
        {"two equal Content-Lengths",
         post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
         {400}},
        {"two different Content-Lengths",
         post("Content-Length: 0\r\nContent-Length: 5\r\n", "hello"),
         {400}},
        {"Content-Length, then Transfer-Encoding",
         post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
         {400, 501}},
        {"Transfer-Encoding, then Content-Length",
         post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"),
         {400, 501}},
        {"Transfer-Encoding alone",
         post("Transfer-Encoding: chunked\r\n", "0\r\n\r\n"),
         {400, 501},
         true,
         true},
        {"a folded Transfer-Encoding",
         post("Content-Length: 5\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n", "0\r\n\r\n"),
         {400, 501}},
        {"a space before the colon", post("Content-Length : 5\r\n", "hello"), {400}},
        {"a control byte in a header value",
         post("Content-Length: 5\r\nX-Bad: a\x01z\r\n", "hello"),
         {400},
         true,
         true},
        // Framed correctly: only the target is wrong.
        {"a bad percent-escape (%zz)", "GET /%zzhello.txt HTTP/1.1\r\n" + host, {400}, false},
        {"a truncated percent-escape", "GET /hello.txt%4 HTTP/1.1\r\n" + host, {400}, false},
        {"a lone %", "GET /hello%.txt HTTP/1.1\r\n" + host, {400}, false},
        {"an escaped NUL", "GET /hello.txt%00 HTTP/1.1\r\n" + host, {400, 404}, false},
    };
}

}  // namespace

TEST_CASE("malformed: bad requests are refused, and what follows them is never answered",
          "[malformed][http][smuggling]") {
    Server s;
    for (const Case& t : malformed_requests()) {
        INFO(t.what << ": " << printable(t.request, 160));
        Connection c = s.connect();
        c.send(t.request + smuggled);
        HttpResponse r = read_http_response(c);
        std::vector<int> statuses = t.statuses;
        bool refused = std::find(statuses.begin(), statuses.end(), r.status) != statuses.end();
        if (t.may_be_processed && !refused) {
            statuses = options().no_echo ? std::vector<int>{404, 405} : std::vector<int>{200};
            INFO("taken as a well-framed POST /echo");
            CHECK_THAT(statuses, Catch::Matchers::VectorContains(r.status));
        } else {
            CHECK_THAT(t.statuses, Catch::Matchers::VectorContains(r.status));
        }
        std::string connection = r.header("Connection").value_or("(none)");
        if (t.must_close && refused) CHECK(connection == "close");
        if (connection == "close") {
            // The smuggled request must never be answered: only the close follows.
            c.wait_for_close();
        } else {
            HttpResponse next = read_http_response(c);
            CHECK(next.status == 200);
            CHECK(compare_bytes(next.body, document_root().hello_txt) == "same");
        }
    }
    s.check_alive_then_stop();
}
