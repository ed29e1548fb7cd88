// The byte stream as a whole: pipelining, end of input, chunking that must
// not matter, and the limits that keep a session's memory bounded.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "protocol.hpp"
#include "unit_support.hpp"

using iolab::Limits;
using iolab::Response;
using iolab::Session;
using namespace iolab::test;

namespace {

// "Host: t\r\n" followed by padding header lines, `total` bytes in all.
std::string padded_headers(std::size_t total) {
    std::string headers = "Host: t\r\n";
    for (int i = 0; headers.size() < total; ++i) {
        const std::string name = "X-Pad-" + std::to_string(i) + ": ";
        const std::size_t left = total - headers.size();
        // Lines of about 1000 bytes; the last one fills the rest exactly.
        std::size_t line = std::min<std::size_t>(1000, left);
        if (left - line < name.size() + 3) line = left;
        headers += name + std::string(line - name.size() - 2, 'p') + "\r\n";
    }
    REQUIRE(headers.size() == total);
    return headers;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pipelining

TEST_CASE_METHOD(TempRoot, "Pipelined requests are answered in order, line and HTTP mixed",
                 "[protocol][pipeline]") {
    const std::string input = "ECHO first\n" + http_request("GET", "/hello.txt") +
                              "GET hello.txt\n" + http_post("/echo", "abc") + "\n" +
                              http_request("HEAD", "/") + "FOO\n" + "QUIT\n" + "ECHO never\n" +
                              http_request("GET", "/");
    Session session(docroot());
    session.feed(input);  // all of it in one piece
    const std::vector<Response> responses = drain(session);
    REQUIRE(responses.size() == 7);
    CHECK(responses[0].head == "first\n");
    CHECK(parse_http(responses[1]).status == 200);
    CHECK(file_bytes(responses[1]) == kHello);
    CHECK(responses[2].head == "OK 13\n");
    CHECK(file_bytes(responses[2]) == kHello);
    CHECK(parse_http(responses[3]).body == "abc");
    CHECK(parse_http(responses[4], /*head_request=*/true).status == 200);
    CHECK(responses[5].head == "ERR 400 unknown command\n");
    CHECK(responses[6].head == "BYE\n");
    CHECK(responses[6].close_after);
    for (std::size_t i = 0; i < 6; ++i)
        CHECK_FALSE(responses[i].close_after);
    CHECK(session.finished());
}

TEST_CASE_METHOD(TempRoot, "A thousand pipelined requests come back in order",
                 "[protocol][pipeline]") {
    std::string input;
    for (int i = 0; i < 1000; ++i) {
        input += (i % 2 == 0) ? "ECHO " + std::to_string(i) + "\n"
                              : http_post("/echo", std::to_string(i));
    }
    const std::vector<Response> responses = run_session(docroot(), input);
    REQUIRE(responses.size() == 1000);
    int out_of_order = 0;
    for (int i = 0; i < 1000; ++i) {
        const std::string& head = responses[static_cast<std::size_t>(i)].head;
        const std::string expected =
            (i % 2 == 0) ? std::to_string(i) + "\n" : "\r\n\r\n" + std::to_string(i);
        if (!head.ends_with(expected)) ++out_of_order;
    }
    CHECK(out_of_order == 0);
}

TEST_CASE_METHOD(TempRoot, "Responses are handed out one at a time", "[protocol][pipeline]") {
    Session session(docroot());
    session.feed("ECHO 1\nECHO 2\nECHO 3\n");
    for (const std::string expected : {"1\n", "2\n", "3\n"}) {
        const std::optional<Response> r = session.next_response();
        REQUIRE(r.has_value());
        CHECK(r->head == expected);
    }
    CHECK_FALSE(session.next_response().has_value());
    CHECK_FALSE(session.finished());  // more may come
}

// ---------------------------------------------------------------------------
// End of input

TEST_CASE_METHOD(TempRoot, "At EOF buffered requests are still answered", "[protocol][eof]") {
    Session session(docroot());
    session.feed("ECHO a\nECHO b\nGET hello.txt");  // no pulling yet
    session.feed_eof();
    const std::vector<Response> responses = drain(session);
    REQUIRE(responses.size() == 3);
    CHECK(responses[0].head == "a\n");
    CHECK(responses[1].head == "b\n");
    CHECK(responses[2].head == "OK 13\n");  // a final line without LF is a line
    CHECK(session.finished());
}

TEST_CASE_METHOD(TempRoot, "A final line without LF is a line command", "[protocol][eof]") {
    struct Case {
        std::string input, reply;
    };
    const std::vector<Case> cases = {
        {"ECHO last", "last\n"},
        {"QUIT", "BYE\n"},
        {"FOO", "ERR 400 unknown command\n"},
        {"GET missing", "ERR 404 not found\n"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.input);
        const std::vector<Response> responses = run_session(docroot(), c.input, /*eof=*/true);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].head == c.reply);
    }
}

TEST_CASE_METHOD(TempRoot, "EOF with nothing or only empty lines buffered just finishes",
                 "[protocol][eof]") {
    for (const std::string input : {"", "\n", "\r\n\n"}) {
        CAPTURE(input);
        CHECK(run_session(docroot(), input, /*eof=*/true).empty());
    }
}

TEST_CASE_METHOD(TempRoot, "A partial HTTP request at EOF gets no response", "[protocol][eof]") {
    const std::vector<std::string> partial = {
        "GET /hello.txt HTTP/1.1\r\nHost: t\r\n",  // headers unfinished
        "GET /hello.txt HTTP/1.1\r\n",             //
        http_request("POST", "/echo", "Host: t\r\nContent-Length: 10\r\n") + "abc",  // body short
    };
    for (const std::string& input : partial) {
        CAPTURE(input);
        const std::vector<Response> responses =
            run_session(docroot(), "ECHO first\n" + input, true);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].head == "first\n");
    }
}

TEST_CASE_METHOD(TempRoot, "A session is not finished before EOF, and ignores input after it",
                 "[protocol][eof]") {
    Session session(docroot());
    session.feed("ECHO a\n");
    CHECK(drain(session).size() == 1);
    CHECK_FALSE(session.finished());
    session.feed_eof();
    CHECK(drain(session).empty());
    CHECK(session.finished());
    session.feed("ECHO late\n");
    CHECK_FALSE(session.next_response().has_value());
    CHECK(session.finished());
}

// ---------------------------------------------------------------------------
// Split invariance

TEST_CASE_METHOD(TempRoot, "How the bytes are chunked never changes the responses",
                 "[protocol][split]") {
    struct Stream {
        std::string name, bytes;
        std::size_t responses;  // how many the stream produces, so the test is not vacuous
    };
    const std::vector<Stream> streams = {
        {"line commands",
         "ECHO hello\r\nGET hello.txt\n\n\r\nFOO\nGET /missing\nGET sub\nECHO a\rb\nECHO tail", 7},
        {"http keep-alive",
         http_request("GET", "/hello.txt") + http_request("HEAD", "/index.html") +
             http_request("GET", "/", "Host: t\r\nConnection: close\r\n") + "ECHO never\n",
         3},
        {"http/1.0, bare LF, escapes",
         "GET /sub/page.html HTTP/1.0\nConnection: keep-alive\n\n" +
             http_request("GET", "/%68ello.txt?q=1", "Host: t\r\nConnection: close\r\n"),
         2},
        {"post bodies",
         http_post("/echo", "hello\r\nworld\n") + http_post("/echo", "") + "ECHO after\n", 3},
        {"expect 100-continue",
         http_request("POST", "/echo", "Host: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n") +
             "12345GET hello.txt\n",
         3},
        {"mixed pipeline",
         "ECHO a\n" + http_request("GET", "/hello.txt") + "GET hello.txt\n" +
             http_request("PUT", "/x") + "QUIT\nECHO never\n",
         5},
        {"framing error", http_request("GET", "/", "Host: t\r\n", "HTTP/2.0") + "ECHO never\n", 1},
        {"bad header", http_request("GET", "/", "Host t\r\n") + "ECHO never\n", 1},
        {"partial at eof", "ECHO a\n" + http_request("GET", "/hello.txt").substr(0, 30), 1},
    };
    for (const Stream& stream : streams) {
        DYNAMIC_SECTION("stream: " << stream.name) {
            const std::string_view bytes = stream.bytes;
            const std::vector<Summary> whole = summarize(run_pieces(docroot(), {bytes}));
            REQUIRE(whole.size() == stream.responses);

            for (std::size_t split = 0; split <= bytes.size(); ++split) {
                CAPTURE(split);
                const std::vector<Summary> two =
                    summarize(run_pieces(docroot(), {bytes.substr(0, split), bytes.substr(split)}));
                REQUIRE(two == whole);
            }

            std::vector<std::string_view> single_bytes;
            for (std::size_t i = 0; i < bytes.size(); ++i)
                single_bytes.push_back(bytes.substr(i, 1));
            CHECK(summarize(run_pieces(docroot(), single_bytes)) == whole);
        }
    }
}

// ---------------------------------------------------------------------------
// Limits

TEST_CASE_METHOD(TempRoot, "A request line of max_line bytes is fine, one more is 414",
                 "[protocol][limits]") {
    const std::size_t max = Limits{}.max_line;
    REQUIRE(max == 8192);
    const std::string at_limit = "ECHO " + std::string(max - 5, 'x');
    const std::string over_limit = at_limit + "x";

    for (const std::string eol : {"\n", "\r\n"}) {  // the CR does not count
        CAPTURE(eol);
        const Response ok = only_response(docroot(), at_limit + eol);
        CHECK(ok.head == at_limit.substr(5) + "\n");
        CHECK_FALSE(ok.close_after);

        Session session(docroot());
        const std::vector<Response> responses =
            feed_all(session, over_limit + eol + "ECHO never\n");
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].head == "ERR 414 line too long\n");
        CHECK(responses[0].close_after);
        CHECK(responses[0].is_error);
        CHECK(session.finished());
    }
}

TEST_CASE_METHOD(TempRoot, "A line too long is caught before its LF arrives",
                 "[protocol][limits]") {
    const std::size_t max = Limits{}.max_line;
    SECTION("max_line bytes without LF: still waiting") {
        Session session(docroot());
        session.feed(std::string(max, 'x'));
        CHECK_FALSE(session.next_response().has_value());
        CHECK_FALSE(session.finished());
        session.feed("\n");
        const std::optional<Response> r = session.next_response();
        REQUIRE(r.has_value());
        CHECK(r->head == "ERR 400 unknown command\n");
    }
    SECTION("one byte more: 414 at once") {
        Session session(docroot());
        session.feed(std::string(max + 1, 'x'));
        const std::optional<Response> r = session.next_response();
        REQUIRE(r.has_value());
        CHECK(r->head == "ERR 414 line too long\n");
        CHECK(r->close_after);
        CHECK(session.finished());
    }
}

TEST_CASE_METHOD(TempRoot, "An HTTP request line too long is an HTTP 414",
                 "[protocol][limits][http]") {
    const std::size_t max = Limits{}.max_line;
    // "GET /hello.txt?ppp...p HTTP/1.1", padded in the (ignored) query.
    const std::string prefix = "GET /hello.txt?";
    const std::string suffix = " HTTP/1.1";
    const std::string at_limit =
        prefix + std::string(max - prefix.size() - suffix.size(), 'p') + suffix;
    REQUIRE(at_limit.size() == max);

    SECTION("at the limit it is served") {
        const Response r = only_response(docroot(), at_limit + "\r\nHost: t\r\n\r\n");
        CHECK(parse_http(r).status == 200);
        CHECK(file_bytes(r) == kHello);
    }
    SECTION("one byte more is 414") {
        const std::string over = prefix + "p" + at_limit.substr(prefix.size());
        Session session(docroot());
        const std::vector<Response> responses = feed_all(session, over + "\r\nHost: t\r\n\r\n");
        REQUIRE(responses.size() == 1);
        CHECK(parse_http(responses[0]).status == 414);
        CHECK(responses[0].close_after);
        CHECK(session.finished());
    }
    SECTION("before the LF arrives, a line that starts like HTTP gets an HTTP 414") {
        for (const std::string start : {"GET /", "POST /", "HEAD /"}) {
            CAPTURE(start);
            Session session(docroot());
            session.feed(start + std::string(max, 'a'));
            const std::optional<Response> r = session.next_response();
            REQUIRE(r.has_value());
            CHECK(parse_http(*r).status == 414);
            CHECK(r->close_after);
        }
    }
}

TEST_CASE_METHOD(TempRoot, "HTTP headers are limited to 16 KiB: 431", "[protocol][limits][http]") {
    REQUIRE(Limits{}.max_header_block == 16 * 1024);
    SECTION("15000 bytes of headers are fine") {
        const Response r =
            only_response(docroot(), http_request("GET", "/hello.txt", padded_headers(15000)));
        CHECK(parse_http(r).status == 200);
        CHECK_FALSE(r.close_after);
    }
    SECTION("17000 bytes of headers are 431") {
        Session session(docroot());
        const std::vector<Response> responses = feed_all(
            session, http_request("GET", "/hello.txt", padded_headers(17000)) + "ECHO never\n");
        REQUIRE(responses.size() == 1);
        CHECK(parse_http(responses[0]).status == 431);
        CHECK(responses[0].close_after);
        CHECK(session.finished());
    }
    SECTION("431 comes before the blank line does") {
        Session session(docroot());
        session.feed("GET /hello.txt HTTP/1.1\r\n" + padded_headers(17000));
        const std::optional<Response> r = session.next_response();
        REQUIRE(r.has_value());
        CHECK(parse_http(*r).status == 431);
        CHECK(r->close_after);
    }
}

TEST_CASE_METHOD(TempRoot, "POST bodies are limited to 1 MiB: 413", "[protocol][limits][post]") {
    const std::size_t max = Limits{}.max_body;
    REQUIRE(max == 1024 * 1024);
    SECTION("exactly 1 MiB is echoed") {
        const std::string body = pseudo_random_bytes(max, 7);
        Session session(docroot());
        const std::vector<Response> responses = feed_all(session, http_post("/echo", body));
        REQUIRE(responses.size() == 1);
        const HttpReply reply = parse_http(responses[0]);
        CHECK(reply.status == 200);
        CHECK(reply.body.size() == body.size());
        CHECK(first_difference(reply.body, body) == std::string::npos);
        CHECK_FALSE(responses[0].close_after);
    }
    SECTION("one byte more is refused as soon as the headers end") {
        Session session(docroot());
        session.feed(http_request(
            "POST", "/echo", "Host: t\r\nContent-Length: " + std::to_string(max + 1) + "\r\n"));
        const std::optional<Response> r = session.next_response();
        REQUIRE(r.has_value());
        CHECK(parse_http(*r).status == 413);
        CHECK(r->close_after);
        CHECK(session.finished());
    }
}

TEST_CASE_METHOD(TempRoot, "A session never buffers much more than one limit",
                 "[protocol][limits]") {
    const Limits limits;
    struct Case {
        std::string name, start, filler;  // `start`, then `filler` over and over: 1 MiB in all
        std::size_t bound;                // the most buffered() may ever be
        std::string reply;                // how the one response starts
    };
    const std::vector<Case> cases = {
        {"a line command", "ECHO ", "x", limits.max_line + kReadChunk, "ERR 414 line too long\n"},
        {"an HTTP request line", "GET /", "a", limits.max_line + kReadChunk, "HTTP/1.1 414 "},
        {"endless headers", "GET / HTTP/1.1\r\n", "X-Fill: 0123456789abcdef\r\n",
         limits.max_line + limits.max_header_block + kReadChunk, "HTTP/1.1 431 "},
        {"a body over the limit",
         http_request("POST", "/echo", "Host: t\r\nContent-Length: 2000000\r\n"), "b",
         limits.max_line + limits.max_header_block + kReadChunk, "HTTP/1.1 413 "},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        std::string input = c.start;
        while (input.size() < 1024 * 1024)
            input += c.filler;

        Session session(docroot());
        std::vector<Response> responses;
        std::size_t most = 0;
        for (std::size_t at = 0; at < input.size(); at += kReadChunk) {
            session.feed(std::string_view(input).substr(at, kReadChunk));
            for (auto& r : drain(session))
                responses.push_back(std::move(r));
            most = std::max(most, session.buffered());
        }
        CHECK(most <= c.bound);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].head.starts_with(c.reply));
        CHECK(responses[0].close_after);
        CHECK(session.finished());
    }
}
