// The HTTP/1.x flavour of the protocol: GET, HEAD, POST /echo, keep-alive,
// and a proper HTTP error for everything malformed.
#include <string>
#include <vector>

#include "protocol.hpp"
#include "unit_support.hpp"

using namespace std::string_literals;
using iolab::Limits;
using iolab::Response;
using iolab::Session;
using namespace iolab::test;

namespace {

// The one HTTP reply a request gets, checked (see parse_http) and taken apart.
struct Answer {
    Response response;
    HttpReply reply;
};

Answer ask(const iolab::DocRoot& root, const std::string& request, bool head_request = false) {
    Answer a{only_response(root, request), {}};
    a.reply = parse_http(a.response, head_request);
    return a;
}

// Asserts that `request` is answered `status` and the connection closed:
// nothing is answered after it, not even a request that follows.
void expect_closing_error(const iolab::DocRoot& root, const std::string& request, int status) {
    CAPTURE(request);
    Session session(root);
    const std::vector<Response> responses = feed_all(session, request + "ECHO never\n");
    REQUIRE(responses.size() == 1);
    CHECK(parse_http(responses[0]).status == status);
    CHECK(responses[0].close_after);
    CHECK(responses[0].is_error);
    CHECK(session.finished());
    session.feed(http_request("GET", "/hello.txt"));
    CHECK_FALSE(session.next_response().has_value());
}

}  // namespace

TEST_CASE_METHOD(TempRoot, "HTTP GET serves a file with its length and type", "[protocol][http]") {
    const Answer a = ask(docroot(), http_request("GET", "/hello.txt"));
    CHECK(a.reply.status_line == "HTTP/1.1 200 OK");
    CHECK(a.reply.header("Content-Length") == "13");
    CHECK(a.reply.header("Content-Type").value_or("").starts_with("text/plain"));
    CHECK(lower(a.reply.header("Connection").value_or("")) == "keep-alive");
    CHECK(a.reply.body.empty());
    REQUIRE(a.response.file.valid());
    CHECK(a.response.file_offset == 0);
    CHECK(a.response.file_length == 13);
    CHECK(file_bytes(a.response) == kHello);
    CHECK_FALSE(a.response.close_after);
    CHECK_FALSE(a.response.is_error);
}

TEST_CASE_METHOD(TempRoot, "HTTP GET picks the Content-Type from the extension",
                 "[protocol][http]") {
    struct Case {
        std::string target, type;
    };
    const std::vector<Case> cases = {
        {"/", "text/html"},  // index.html
        {"/index.html", "text/html"}, {"/sub/page.html", "text/html"},
        {"/style.css", "text/css"},   {"/data.json", "application/json"},
        {"/image.png", "image/png"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.target);
        const Answer a = ask(docroot(), http_request("GET", c.target));
        CHECK(a.reply.status == 200);
        CHECK(a.reply.header("Content-Type").value_or("").starts_with(c.type));
    }
}

TEST_CASE_METHOD(TempRoot, "HTTP GET / serves index.html", "[protocol][http]") {
    const Answer a = ask(docroot(), http_request("GET", "/"));
    CHECK(a.reply.status == 200);
    CHECK(a.reply.header("Content-Length") == std::to_string(kIndex.size()));
    CHECK(file_bytes(a.response) == kIndex);
}

TEST_CASE_METHOD(TempRoot, "HEAD sends the headers a GET would, and no body", "[protocol][http]") {
    for (const std::string target : {"/hello.txt", "/", "/image.png"}) {
        CAPTURE(target);
        const Answer get = ask(docroot(), http_request("GET", target));
        const Answer head = ask(docroot(), http_request("HEAD", target), /*head_request=*/true);
        CHECK(head.reply.status_line == get.reply.status_line);
        CHECK(head.reply.headers == get.reply.headers);
        CHECK(head.reply.body.empty());
        CHECK(head.response.file_length == 0);
        CHECK_FALSE(head.response.close_after);
    }
    // A HEAD of a missing file is a 404 without the error body.
    const Answer missing = ask(docroot(), http_request("HEAD", "/missing.txt"), true);
    CHECK(missing.reply.status == 404);
}

TEST_CASE_METHOD(TempRoot, "HTTP targets are percent-decoded once, the query is ignored",
                 "[protocol][http]") {
    struct Case {
        std::string target;
        std::string_view content;
    };
    const std::vector<Case> cases = {
        {"/with%20space.txt", "spaced out\n"},
        {"/%68ello.txt", kHello},
        {"/hello%2Etxt", kHello},
        {"/sub%2fpage.html", kPage},  // an encoded slash is just a slash once decoded
        {"/pct%2541.txt", "a literal percent sign\n"},  // %25 is '%': decoded once, no more
        {"/hello.txt?x=1&y=2", kHello},
        {"/hello.txt?../../secret.txt", kHello},
        {"/?page=2", kIndex},
        {"/hello.txt?%zz", kHello},              // the query is not decoded at all
        {"http://localhost/hello.txt", kHello},  // absolute-form
        {"http://example.com:8080/sub/page.html?q", kPage},
    };
    for (const Case& c : cases) {
        CAPTURE(c.target);
        const Answer a = ask(docroot(), http_request("GET", c.target));
        CHECK(a.reply.status == 200);
        CHECK(file_bytes(a.response) == c.content);
    }
    // Decoding happens once: "%2541" names the file "%41", and "%41" names "A".
    CHECK(ask(docroot(), http_request("GET", "/pct%41.txt")).reply.status == 404);
}

TEST_CASE_METHOD(TempRoot, "HTTP file errors are proper replies that keep the connection",
                 "[protocol][http]") {
    struct Case {
        std::string target;
        std::vector<int> statuses;  // acceptable answers
    };
    const std::vector<Case> cases = {
        {"/missing.txt", {404}}, {"/sub/missing", {404}}, {"/sub", {403, 404}},
        {"/sub/", {403, 404}},   {"/fifo", {403}},        {"/link_out", {403, 404}},
        {"/%252e%252e", {404}},  // decodes once to the literal name "%2e%2e"
    };
    for (const Case& c : cases) {
        CAPTURE(c.target);
        FifoWatchdog watchdog(root_path() + "/fifo");
        Session session(docroot());
        const std::vector<Response> responses =
            feed_all(session, http_request("GET", c.target) + http_request("GET", "/hello.txt"));
        CHECK_FALSE(watchdog.stop());
        REQUIRE(responses.size() == 2);
        const HttpReply error = parse_http(responses[0]);
        CHECK_THAT(c.statuses, Catch::Matchers::VectorContains(error.status));
        CHECK(responses[0].is_error);
        CHECK_FALSE(responses[0].close_after);
        CHECK_FALSE(responses[0].file.valid());
        CHECK(parse_http(responses[1]).status == 200);
    }
}

TEST_CASE_METHOD(TempRoot, "Bad HTTP targets are 400", "[protocol][http]") {
    const std::vector<std::string> targets = {
        "hello.txt",     // neither origin-form nor absolute-form
        "../hello.txt",  //
        "/%zz",          // bad escapes
        "/%4",
        "/%",
        "/hello%2.txt",
        "/%g1",
        "/%00",  // NUL
        "/hello.txt%00.html",
    };
    for (const std::string& target : targets) {
        CAPTURE(target);
        const Answer a = ask(docroot(), http_request("GET", target));
        CHECK(a.reply.status == 400);
        CHECK(a.response.is_error);
        CHECK_FALSE(a.response.file.valid());
    }
}

TEST_CASE_METHOD(TempRoot, "HTTP versions: 1.0 and 1.1, other 1.x as 1.1, others refused",
                 "[protocol][http]") {
    SECTION("HTTP/1.2 is served as HTTP/1.1") {
        const Answer a =
            ask(docroot(), http_request("GET", "/hello.txt", "Host: t\r\n", "HTTP/1.2"));
        CHECK(a.reply.status == 200);
        CHECK(a.reply.status_line.starts_with("HTTP/1.1 "));
        CHECK_FALSE(a.response.close_after);
    }
    SECTION("the reply is HTTP/1.1 even to HTTP/1.0") {
        const Answer a = ask(docroot(), http_request("GET", "/hello.txt", "", "HTTP/1.0"));
        CHECK(a.reply.status_line.starts_with("HTTP/1.1 200 "));
    }
    SECTION("another major version is 505") {
        for (const std::string version : {"HTTP/2.0", "HTTP/3.0", "HTTP/0.9"}) {
            expect_closing_error(docroot(),
                                 http_request("GET", "/hello.txt", "Host: t\r\n", version), 505);
        }
    }
    SECTION("a malformed version is 400") {
        for (const std::string version : {"HTTP/1", "HTTP/x.y", "HTTP/1.x", "HTTP/", "HTTP/1.1x"}) {
            expect_closing_error(docroot(),
                                 http_request("GET", "/hello.txt", "Host: t\r\n", version), 400);
        }
    }
}

TEST_CASE_METHOD(TempRoot, "Keep-alive: 1.1 keeps unless close, 1.0 closes unless keep-alive",
                 "[protocol][http]") {
    struct Case {
        std::string version, headers;
        bool keep;
    };
    const std::vector<Case> cases = {
        {"HTTP/1.1", "Host: t\r\n", true},
        {"HTTP/1.1", "Host: t\r\nConnection: keep-alive\r\n", true},
        {"HTTP/1.1", "Host: t\r\nConnection: close\r\n", false},
        {"HTTP/1.1", "Host: t\r\nConnection: Close\r\n", false},
        {"HTTP/1.1", "Host: t\r\nconnection: CLOSE\r\n", false},
        {"HTTP/1.1", "Host: t\r\nConnection: upgrade, close\r\n", false},  // a token list
        {"HTTP/1.1", "Host: t\r\nConnection: closed\r\n", true},           // not the token "close"
        {"HTTP/1.2", "Host: t\r\n", true},
        {"HTTP/1.0", "", false},
        {"HTTP/1.0", "Host: t\r\n", false},
        {"HTTP/1.0", "Connection: keep-alive\r\n", true},
        {"HTTP/1.0", "Connection: Keep-Alive\r\n", true},
    };
    for (const Case& c : cases) {
        CAPTURE(c.version, c.headers);
        Session session(docroot());
        const std::vector<Response> responses = feed_all(
            session, http_request("GET", "/hello.txt", c.headers, c.version) + "ECHO next\n");
        REQUIRE_FALSE(responses.empty());
        const HttpReply reply = parse_http(responses[0]);
        CHECK(reply.status == 200);
        CHECK(responses[0].close_after == !c.keep);
        CHECK(lower(reply.header("Connection").value_or("")) == (c.keep ? "keep-alive" : "close"));
        if (c.keep) {
            REQUIRE(responses.size() == 2);
            CHECK(responses[1].head == "next\n");
        } else {
            CHECK(responses.size() == 1);
            CHECK(session.finished());
        }
    }
}

TEST_CASE_METHOD(TempRoot, "HTTP/1.1 needs a Host header", "[protocol][http]") {
    CHECK(ask(docroot(), http_request("GET", "/hello.txt", "")).reply.status == 400);
    CHECK(ask(docroot(), http_request("GET", "/hello.txt", "X-Other: 1\r\n")).reply.status == 400);
    CHECK(ask(docroot(), http_request("GET", "/hello.txt", "host: t\r\n")).reply.status == 200);
    CHECK(ask(docroot(), http_request("GET", "/hello.txt", "HOST:t\r\n")).reply.status == 200);
}

TEST_CASE_METHOD(TempRoot, "Bare LF line ends are accepted in HTTP too", "[protocol][http]") {
    const Answer a = ask(docroot(), "GET /hello.txt HTTP/1.1\nHost: t\n\n");
    CHECK(a.reply.status == 200);
    CHECK(file_bytes(a.response) == kHello);
}

TEST_CASE_METHOD(TempRoot, "POST /echo answers the body it was sent", "[protocol][http][post]") {
    const std::vector<std::string> bodies = {
        "hello",
        "",
        "binary \0\x01\xff bytes"s,
        "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",  // looks like a request: it is only a body
        "QUIT\n",
        std::string(100000, 'b'),
    };
    for (const std::string& body : bodies) {
        CAPTURE(body.size());
        Session session(docroot());
        const std::vector<Response> responses =
            feed_all(session, http_post("/echo", body) + "ECHO after\n");
        REQUIRE(responses.size() == 2);
        const HttpReply reply = parse_http(responses[0]);
        CHECK(reply.status == 200);
        CHECK(reply.header("Content-Length") == std::to_string(body.size()));
        CHECK(reply.body.size() == body.size());
        CHECK(first_difference(reply.body, body) == std::string::npos);
        CHECK_FALSE(responses[0].file.valid());
        CHECK_FALSE(responses[0].close_after);
        CHECK_FALSE(responses[0].is_error);
        CHECK(responses[1].head == "after\n");
    }
}

TEST_CASE_METHOD(TempRoot, "POST /echo: header spellings and a query", "[protocol][http][post]") {
    CHECK(ask(docroot(), http_request("POST", "/echo", "Host: t\r\ncontent-length: 2\r\n") + "hi")
              .reply.body == "hi");
    CHECK(
        ask(docroot(), http_request("POST", "/echo", "Host: t\r\nContent-Length:   2  \r\n") + "hi")
            .reply.body == "hi");
    CHECK(ask(docroot(), http_post("/echo?x=1", "hi")).reply.body == "hi");
    const Answer http10 =
        ask(docroot(), http_request("POST", "/echo", "Content-Length: 2\r\n", "HTTP/1.0") + "hi");
    CHECK(http10.reply.body == "hi");
    CHECK(http10.response.close_after);
}

TEST_CASE_METHOD(TempRoot, "POST /echo waits for the whole body", "[protocol][http][post]") {
    Session session(docroot());
    session.feed(http_request("POST", "/echo", "Host: t\r\nContent-Length: 10\r\n"));
    CHECK_FALSE(session.next_response().has_value());
    session.feed("0123");
    CHECK_FALSE(session.next_response().has_value());
    CHECK_FALSE(session.finished());
    session.feed("456789ECHO after\n");
    std::vector<Response> responses = drain(session);
    REQUIRE(responses.size() == 2);
    CHECK(parse_http(responses[0]).body == "0123456789");
    CHECK(responses[1].head == "after\n");
}

TEST_CASE_METHOD(TempRoot, "Expect: 100-continue gets an interim 100 before the body",
                 "[protocol][http][post]") {
    Session session(docroot());
    session.feed(
        http_request("POST", "/echo", "Host: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"));
    std::optional<Response> interim = session.next_response();
    REQUIRE(interim.has_value());
    CHECK(interim->head == "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK_FALSE(interim->close_after);
    CHECK_FALSE(interim->file.valid());
    CHECK_FALSE(session.next_response().has_value());  // now it waits for the body

    session.feed("hello");
    std::optional<Response> final_reply = session.next_response();
    REQUIRE(final_reply.has_value());
    const HttpReply reply = parse_http(*final_reply);
    CHECK(reply.status == 200);
    CHECK(reply.body == "hello");
    CHECK_FALSE(session.next_response().has_value());
}

TEST_CASE_METHOD(TempRoot, "A body over the limit is refused before any 100 Continue",
                 "[protocol][http][post]") {
    const std::string length = std::to_string(Limits{}.max_body + 1);
    Session session(docroot());
    const std::vector<Response> responses = feed_all(
        session,
        http_request("POST", "/echo",
                     "Host: t\r\nContent-Length: " + length + "\r\nExpect: 100-continue\r\n"));
    REQUIRE(responses.size() == 1);
    CHECK(parse_http(responses[0]).status == 413);
    CHECK(responses[0].close_after);
}

TEST_CASE_METHOD(TempRoot, "POST /echo without a length is 411, over 1 MiB is 413",
                 "[protocol][http][post]") {
    expect_closing_error(docroot(), http_request("POST", "/echo") + "hello", 411);
    const std::string too_long = std::to_string(Limits{}.max_body + 1);
    // Refused as soon as the headers end: the body is never waited for.
    expect_closing_error(
        docroot(), http_request("POST", "/echo", "Host: t\r\nContent-Length: " + too_long + "\r\n"),
        413);
}

TEST_CASE_METHOD(TempRoot, "Other methods and POST elsewhere are 405 with Allow",
                 "[protocol][http]") {
    const std::vector<std::string> requests = {
        http_request("PUT", "/hello.txt"),
        http_request("DELETE", "/hello.txt"),
        http_request("PATCH", "/hello.txt"),
        http_request("POST", "/hello.txt", "Host: t\r\nContent-Length: 0\r\n"),
        http_request("POST", "/", "Host: t\r\nContent-Length: 0\r\n"),
        http_request("POST", "/echo/more", "Host: t\r\nContent-Length: 0\r\n"),
    };
    for (const std::string& request : requests) {
        CAPTURE(request);
        Session session(docroot());
        const std::vector<Response> responses = feed_all(session, request + "ECHO after\n");
        REQUIRE(responses.size() == 2);  // 405 without a body keeps the connection
        const HttpReply reply = parse_http(responses[0]);
        CHECK(reply.status == 405);
        CHECK(reply.header("Allow").value_or("").find("GET") != std::string::npos);
        CHECK(responses[0].is_error);
        CHECK_FALSE(responses[0].close_after);
        CHECK(responses[1].head == "after\n");
    }
}

TEST_CASE_METHOD(TempRoot, "A 405 with a body either skips the body or closes",
                 "[protocol][http]") {
    Session session(docroot());
    const std::vector<Response> responses =
        feed_all(session, http_post("/hello.txt", "ECHO smuggled\n") + "ECHO after\n");
    REQUIRE_FALSE(responses.empty());
    CHECK(parse_http(responses[0]).status == 405);
    if (responses[0].close_after) {
        CHECK(responses.size() == 1);
    } else {
        // The body was consumed, not taken for a request.
        REQUIRE(responses.size() == 2);
        CHECK(responses[1].head == "after\n");
    }
}

TEST_CASE_METHOD(TempRoot, "A bad Content-Length is 400 and closes", "[protocol][http][post]") {
    const std::vector<std::string> headers = {
        "Content-Length: 5\r\nContent-Length: 5\r\n",  // duplicate
        "Content-Length: 5\r\nContent-Length: 6\r\n",  // conflicting
        "Content-Length: abc\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Content-Length: 18446744073709551616\r\n",  // 2^64
        "Content-Length: -1\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5x\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: \r\n",
    };
    for (const std::string& h : headers) {
        expect_closing_error(docroot(), http_request("POST", "/echo", "Host: t\r\n" + h) + "hello",
                             400);
    }
}

TEST_CASE_METHOD(TempRoot, "Transfer-Encoding is not implemented: 501 and close",
                 "[protocol][http]") {
    expect_closing_error(
        docroot(),
        http_request("POST", "/echo", "Host: t\r\nTransfer-Encoding: chunked\r\n") +
            "5\r\nhello\r\n0\r\n\r\n",
        501);
    expect_closing_error(
        docroot(), http_request("GET", "/hello.txt", "Host: t\r\ntransfer-encoding: gzip\r\n"),
        501);

    // With a Content-Length as well the request is ambiguous (a smuggling
    // attempt): refusing it as 400 is as good as 501, as long as it closes.
    const std::vector<Response> both = run_session(
        docroot(), http_request("POST", "/echo",
                                "Host: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n") +
                       "hello");
    REQUIRE(both.size() == 1);
    CHECK_THAT((std::vector<int>{400, 501}),
               Catch::Matchers::VectorContains(parse_http(both[0]).status));
    CHECK(both[0].close_after);
}

TEST_CASE_METHOD(TempRoot, "Malformed header lines are 400 and close", "[protocol][http]") {
    const std::vector<std::string> headers = {
        "Host: t\r\nNoColonHere\r\n",
        "Host: t\r\nX-A: b\r\n  folded\r\n",  // obs-fold
        "Host: t\r\nX-A: b\r\n\tfolded\r\n",
        " Host: t\r\n",  // the first header line folded
    };
    for (const std::string& h : headers) {
        expect_closing_error(docroot(), http_request("GET", "/hello.txt", h), 400);
    }
}

TEST_CASE_METHOD(TempRoot, "Control bytes in the request line are 400 and close",
                 "[protocol][http]") {
    for (const std::string& target : {"/a\x01z"s, "/hello.txt\x7f"s, "/a\x1bz"s, "/a\0z"s}) {
        expect_closing_error(docroot(), http_request("GET", target), 400);
    }
}

TEST_CASE_METHOD(TempRoot, "Errors that leave framing intact keep the connection",
                 "[protocol][http]") {
    const std::vector<Response> responses = run_session(
        docroot(), http_request("GET", "/missing.txt") + http_request("GET", "/sub/") +
                       http_request("PUT", "/hello.txt") + http_request("GET", "/hello.txt"));
    REQUIRE(responses.size() == 4);
    CHECK(parse_http(responses[0]).status == 404);
    CHECK_THAT((std::vector<int>{403, 404}),
               Catch::Matchers::VectorContains(parse_http(responses[1]).status));
    CHECK(parse_http(responses[2]).status == 405);
    CHECK(parse_http(responses[3]).status == 200);
    for (const Response& r : responses)
        CHECK_FALSE(r.close_after);
}
