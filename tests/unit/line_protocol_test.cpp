// The line protocol: ECHO, GET, QUIT, empty lines and unknown commands.
#include <unistd.h>

#include <string>
#include <vector>

#include "protocol.hpp"
#include "unit_support.hpp"

using namespace std::string_literals;
using iolab::Response;
using iolab::Session;
using namespace iolab::test;

TEST_CASE_METHOD(TempRoot, "ECHO replies with the bytes after 'ECHO ', unchanged",
                 "[protocol][line]") {
    struct Case {
        std::string request, reply;
    };
    const std::vector<Case> cases = {
        {"ECHO hello\n", "hello\n"},
        {"ECHO hello world\n", "hello world\n"},
        {"ECHO  two leading spaces\n", " two leading spaces\n"},
        {"ECHO trailing space \n", "trailing space \n"},
        {"ECHO\n", "\n"},
        {"ECHO \n", "\n"},
        {"ECHO crlf\r\n", "crlf\n"},            // the CR before the LF is dropped...
        {"ECHO two crs\r\r\n", "two crs\r\n"},  // ...but only one
        {"ECHO a\rb\n", "a\rb\n"},              // a CR elsewhere is data
        {"ECHO tab\there\n", "tab\there\n"},
        {"ECHO \x01\x7f\xfe\xff\n"s, "\x01\x7f\xfe\xff\n"s},
        {"ECHO nul\0byte\n"s, "nul\0byte\n"s},
        {"ECHO ECHO QUIT\n", "ECHO QUIT\n"},
        {"ECHO GET / HTTP/1.1\n", "GET / HTTP/1.1\n"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.request);
        const Response r = only_response(docroot(), c.request);
        CHECK(r.head == c.reply);
        CHECK_FALSE(r.file.valid());
        CHECK(r.file_length == 0);
        CHECK_FALSE(r.close_after);
        CHECK_FALSE(r.is_error);
    }
}

TEST_CASE_METHOD(TempRoot, "GET <path> answers OK <size> and the file region", "[protocol][line]") {
    struct Case {
        std::string request;
        std::string_view content;
    };
    const std::vector<Case> cases = {
        {"GET hello.txt\n", kHello},
        {"GET /hello.txt\n", kHello},  // a leading slash is allowed
        {"GET hello.txt\r\n", kHello},
        {"GET /\n", kIndex},  // the root serves index.html
        {"GET index.html\n", kIndex},
        {"GET sub/page.html\n", kPage},
        {"GET sub/../hello.txt\n", kHello},
        {"GET link_in\n", kHello},  // a symlink that stays inside
        {"GET empty.txt\n", ""},
        {"GET with space.txt\n", "spaced out\n"},          // the path is the rest of the line
        {"GET pct%41.txt\n", "a literal percent sign\n"},  // no percent-decoding here
    };
    for (const Case& c : cases) {
        CAPTURE(c.request);
        const Response r = only_response(docroot(), c.request);
        CHECK(r.head == "OK " + std::to_string(c.content.size()) + "\n");
        CHECK(r.file_offset == 0);
        CHECK(r.file_length == c.content.size());
        if (!c.content.empty()) REQUIRE(r.file.valid());
        CHECK(file_bytes(r) == c.content);
        CHECK_FALSE(r.close_after);
        CHECK_FALSE(r.is_error);
    }
}

TEST_CASE_METHOD(TempRoot, "GET errors are one line and keep the connection", "[protocol][line]") {
    struct Case {
        std::string request, reply;
    };
    const std::vector<Case> cases = {
        {"GET missing.txt\n", "ERR 404 not found\n"},
        {"GET /sub/missing.txt\n", "ERR 404 not found\n"},
        {"GET hello%2etxt\n", "ERR 404 not found\n"},  // no percent-decoding: a literal name
        {"GET pctA.txt\n", "ERR 404 not found\n"},
        {"GET sub\n", "ERR 403 forbidden\n"},  // a directory
        {"GET sub/\n", "ERR 403 forbidden\n"},
        {"GET \n", "ERR 400 bad path\n"},  // an empty path
        {"GET a\0b\n"s, "ERR 400 bad path\n"},
        {"GET hello.txt\0\n"s, "ERR 400 bad path\n"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.request);
        // Each error is followed by a request that must still be answered.
        const std::vector<Response> responses =
            run_session(docroot(), c.request + "ECHO still here\n");
        REQUIRE(responses.size() == 2);
        CHECK(responses[0].head == c.reply);
        CHECK_FALSE(responses[0].file.valid());
        CHECK(responses[0].file_length == 0);
        CHECK_FALSE(responses[0].close_after);
        CHECK(responses[0].is_error);
        CHECK(responses[1].head == "still here\n");
    }
}

TEST_CASE_METHOD(TempRoot, "GET of a FIFO is refused without blocking", "[protocol][line]") {
    FifoWatchdog watchdog(root_path() + "/fifo");
    const Response r = only_response(docroot(), "GET fifo\n");
    CHECK_FALSE(watchdog.stop());
    CHECK(r.head == "ERR 403 forbidden\n");
    CHECK_FALSE(r.file.valid());
}

TEST_CASE_METHOD(TempRoot, "GET of an unreadable file is 403", "[protocol][line]") {
    if (::geteuid() == 0) {
        WARN("running as root: mode 000 does not stop root from reading, nothing to test");
        return;
    }
    CHECK(only_response(docroot(), "GET unreadable.txt\n").head == "ERR 403 forbidden\n");
}

TEST_CASE_METHOD(TempRoot, "QUIT answers BYE and ends the session", "[protocol][line]") {
    const std::string quit = GENERATE(as<std::string>{}, "QUIT\n", "QUIT\r\n");
    CAPTURE(quit);
    Session session(docroot());
    const std::vector<Response> responses = feed_all(session, quit + "ECHO ignored\n");
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].head == "BYE\n");
    CHECK(responses[0].close_after);
    CHECK_FALSE(responses[0].is_error);
    CHECK(session.finished());

    // Nothing more comes out, whatever arrives.
    session.feed("ECHO more\n");
    CHECK_FALSE(session.next_response().has_value());
    session.feed_eof();
    CHECK_FALSE(session.next_response().has_value());
    CHECK(session.finished());
}

TEST_CASE_METHOD(TempRoot, "Empty lines are ignored", "[protocol][line]") {
    const std::vector<Response> responses = run_session(docroot(), "\n\r\n\n\r\nECHO x\n\n");
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].head == "x\n");
}

TEST_CASE_METHOD(TempRoot, "Unknown commands get ERR 400 and the connection stays",
                 "[protocol][line]") {
    const std::vector<std::string> unknown = {
        "FOO\n",           "FOO bar baz\n",
        "quit\n",          "echo hi\n",  // commands are case-sensitive
        "Get hello.txt\n", "ECHOhi\n",
        " ECHO hi\n",      "HEAD hello.txt\n",
        "\x01\x02\n",      "GET\thello.txt\n",
    };
    for (const std::string& request : unknown) {
        CAPTURE(request);
        Session session(docroot());
        const std::vector<Response> responses = feed_all(session, request + "ECHO after\n");
        REQUIRE(responses.size() == 2);
        CHECK(responses[0].head == "ERR 400 unknown command\n");
        CHECK_FALSE(responses[0].close_after);
        CHECK(responses[0].is_error);
        CHECK(responses[1].head == "after\n");
        CHECK_FALSE(session.finished());
    }
}
