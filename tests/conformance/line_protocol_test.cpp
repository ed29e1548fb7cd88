// The line protocol: ECHO, GET, QUIT, their errors, framing and pipelining.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "client.hpp"
#include "conformance.hpp"

using namespace conformance;

namespace {

// Every byte value but LF, ending in a byte that is not CR.
std::string every_byte_but_lf() {
    std::string bytes;
    for (int b = 0; b < 256; ++b)
        if (b != '\n') bytes.push_back(static_cast<char>(b));
    return bytes;
}

}  // namespace

TEST_CASE("line: ECHO replies with the text after 'ECHO ', byte for byte", "[line]") {
    Connection c = server().connect();
    const std::vector<std::string> texts = {
        "hello world",
        "",
        "  two spaces before and after  ",
        "ECHO GET /index.html HTTP/1.1",
        "looks like HTTP HTTP/1.1",
        std::string("a NUL\0inside", 12),
        "a CR\rinside and a tab\there",
        every_byte_but_lf(),
    };
    for (const std::string& text : texts) {
        INFO("ECHO " << printable(text));
        std::string reply = line_exchange(c, "ECHO " + text);
        CHECK(printable(reply) == printable(text + "\n"));
    }
}

TEST_CASE("line: GET sends 'OK <size>' then exactly the file", "[line]") {
    const DocumentRoot& d = document_root();
    struct Case {
        std::string path, content;
    };
    const std::vector<Case> cases = {
        {"hello.txt", d.hello_txt},
        {"/hello.txt", d.hello_txt},
        {"subdir/inner.txt", "inside a subdirectory\n"},
        {"with space.txt", "a name with a space\n"},
        {"/", d.index_html},
        {"empty.txt", ""},
    };
    Connection c = server().connect();
    for (const Case& t : cases) {
        INFO("GET " << t.path);
        LineGetReply reply = line_get(c, t.path);
        CHECK(printable(reply.status_line) ==
              printable("OK " + std::to_string(t.content.size()) + "\n"));
        CHECK(compare_bytes(reply.body, t.content) == "same");
    }
    // The connection goes on after a reply with no body.
    std::string reply = line_exchange(c, "ECHO after the empty file");
    CHECK(printable(reply) == printable("after the empty file\n"));
}

TEST_CASE("line: GET of a 64 MiB file arrives byte for byte", "[line][large]") {
    Connection c = server().connect();
    c.send("GET big.bin\n");
    std::string status_line = c.read_line();
    REQUIRE(printable(status_line) == printable("OK " + std::to_string(big_file_size) + "\n"));
    std::string body = c.read_exact(big_file_size);
    CHECK(compare_bytes(body, big_file()) == "same");
    std::string reply = line_exchange(c, "ECHO still here");
    CHECK(printable(reply) == printable("still here\n"));
}

TEST_CASE("line: file errors are ERR 404, 403 or 400 and keep the connection open", "[line]") {
    struct Case {
        std::string path;
        std::string reply;
    };
    std::vector<Case> cases = {
        {"no-such-file.txt", "ERR 404 not found\n"},
        {"subdir/no-such-file.txt", "ERR 404 not found\n"},
        {"hello.txt/below-a-file", "ERR 404 not found\n"},
        {"subdir", "ERR 403 forbidden\n"},  // a directory
        {"fifo", "ERR 403 forbidden\n"},    // not a regular file
        {"../secret.txt", "ERR 403 forbidden\n"},
        {"", "ERR 400 bad path\n"},
        {std::string("hello.txt\0.html", 15), "ERR 400 bad path\n"},
        {std::string(300, 'n'), "ERR 400 bad path\n"},  // a name longer than NAME_MAX
    };
    if (::geteuid() != 0) cases.push_back({"unreadable.txt", "ERR 403 forbidden\n"});

    Connection c = server().connect();
    for (const Case& t : cases) {
        INFO("GET " << printable(t.path));
        std::string reply = line_exchange(c, "GET " + t.path);
        CHECK(printable(reply) == printable(t.reply));
    }
    std::string reply = line_exchange(c, "ECHO still open");
    CHECK(printable(reply) == printable("still open\n"));
}

TEST_CASE("line: an unknown command gets ERR 400 and the connection stays open", "[line]") {
    Connection c = server().connect();
    for (const char* request :
         {"HELLO", "ECHOES", "GETS /hello.txt", "quit", "QUIT now", " ECHO x"}) {
        INFO(request);
        std::string reply = line_exchange(c, request);
        CHECK(printable(reply) == printable("ERR 400 unknown command\n"));
    }
    std::string reply = line_exchange(c, "ECHO still open");
    CHECK(printable(reply) == printable("still open\n"));
}

TEST_CASE("line: QUIT answers BYE, then the server closes", "[line]") {
    Connection c = server().connect();
    // What follows QUIT in the same write is never answered.
    c.send("ECHO before\nQUIT\nECHO after\n");
    std::string before = c.read_line();
    std::string bye = c.read_line();
    CHECK(printable(before) == printable("before\n"));
    CHECK(printable(bye) == printable("BYE\n"));
    c.wait_for_close();
}

TEST_CASE("line: empty lines are ignored", "[line]") {
    Connection c = server().connect();
    c.send("\n\r\n\n\r\nECHO after empty lines\n\n");
    std::string reply = c.read_line();
    CHECK(printable(reply) == printable("after empty lines\n"));
    std::string more = c.read_for(200ms);
    CHECK(printable(more) == printable(""));
}

TEST_CASE("line: CRLF ends a line too, and only one CR is dropped", "[line]") {
    const std::string& hello = document_root().hello_txt;
    Connection c = server().connect();
    c.send("ECHO crlf\r\n");
    std::string crlf = c.read_line();
    CHECK(printable(crlf) == printable("crlf\n"));
    c.send("ECHO two CRs\r\r\n");
    std::string two_crs = c.read_line();
    CHECK(printable(two_crs) == printable("two CRs\r\n"));
    c.send("GET hello.txt\r\n");
    std::string expected = "OK " + std::to_string(hello.size()) + "\n" + hello;
    std::string file = c.read_exact(expected.size());
    CHECK(compare_bytes(file, expected) == "same");
}

TEST_CASE("line: a request line over 8 KiB gets ERR 414, then the server closes", "[line]") {
    Connection c = server().connect();
    const std::size_t max_line = 8 * 1024;

    SECTION("a line of exactly 8 KiB is still served") {
        std::string text(max_line - 5, 'x');  // "ECHO " + text is 8192 bytes
        std::string reply = line_exchange(c, "ECHO " + text);
        CHECK(compare_bytes(reply, text + "\n") == "same");
        std::string crlf_text(max_line - 5, 'y');  // the CR does not count
        c.send("ECHO " + crlf_text + "\r\n");
        std::string crlf_reply = c.read_line();
        CHECK(compare_bytes(crlf_reply, crlf_text + "\n") == "same");
    }
    SECTION("one byte more, with its LF") {
        c.send("ECHO " + std::string(max_line - 4, 'x') + "\nECHO never answered\n");
        std::string reply = c.read_line();
        CHECK(printable(reply) == printable("ERR 414 line too long\n"));
        c.wait_for_close();
    }
    SECTION("a long line whose LF never comes: the server does not wait for it") {
        c.send("ECHO " + std::string(3 * max_line, 'x'));
        std::string reply = c.read_line();
        CHECK(printable(reply) == printable("ERR 414 line too long\n"));
        c.wait_for_close();
    }
}
TEST_CASE("line: 100 pipelined requests in one write are answered in order", "[line][pipelining]") {
    const DocumentRoot& d = document_root();
    std::string requests, expected;
    for (int i = 0; i < 100; ++i) {
        switch (i % 5) {
            case 0:
                requests += "ECHO request " + std::to_string(i) + "\n";
                expected += "request " + std::to_string(i) + "\n";
                break;
            case 1:
                requests += "GET hello.txt\n";
                expected += "OK " + std::to_string(d.hello_txt.size()) + "\n" + d.hello_txt;
                break;
            case 2:
                requests += "GET no-such-file\r\n\n";
                expected += "ERR 404 not found\n";
                break;
            case 3:
                requests += "NONSENSE " + std::to_string(i) + "\n";
                expected += "ERR 400 unknown command\n";
                break;
            case 4:
                requests += "GET /\n";
                expected += "OK " + std::to_string(d.index_html.size()) + "\n" + d.index_html;
                break;
        }
    }
    requests += "QUIT\n";
    expected += "BYE\n";

    Connection c = server().connect();
    c.send(requests);
    std::string replies = c.read_exact(expected.size());
    CHECK(compare_bytes(replies, expected) == "same");
    c.wait_for_close();
}

TEST_CASE("line: requests sent one byte at a time are answered", "[line]") {
    const DocumentRoot& d = document_root();
    Connection c = server().connect();
    c.send_byte_by_byte("ECHO one byte at a time\r\n");
    std::string echo = c.read_line();
    CHECK(printable(echo) == printable("one byte at a time\n"));

    c.send_byte_by_byte("GET /hello.txt\n");
    std::string expected = "OK " + std::to_string(d.hello_txt.size()) + "\n" + d.hello_txt;
    std::string file = c.read_exact(expected.size());
    CHECK(compare_bytes(file, expected) == "same");

    c.send_byte_by_byte("WHAT\n\nQUIT\n");
    std::string unknown = c.read_line();
    std::string bye = c.read_line();
    CHECK(printable(unknown) == printable("ERR 400 unknown command\n"));
    CHECK(printable(bye) == printable("BYE\n"));
    c.wait_for_close();
}

TEST_CASE("line: the server answers what it received before the client's EOF", "[line]") {
    const std::string& hello = document_root().hello_txt;
    Connection c = server().connect();
    c.send("ECHO first\nGET hello.txt\n");
    c.shut_down_writing();  // like `nc -N`: the requests, then EOF
    std::string replies = c.read_until_eof();
    CHECK(compare_bytes(replies, "first\nOK " + std::to_string(hello.size()) + "\n" + hello) ==
          "same");
}
