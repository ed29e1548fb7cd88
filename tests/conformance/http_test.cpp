// HTTP/1.x over raw sockets: GET, HEAD, POST /echo, keep-alive, errors.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "client.hpp"
#include "conformance.hpp"
#include "not_checked.hpp"

using namespace conformance;

namespace {

// A header's value, or "(missing)": readable in a failed CHECK.
std::string header(const HttpResponse& r, const char* name) {
    return r.header(name).value_or("(missing)");
}

// What every response must have, success or error.
void check_well_formed(const HttpResponse& r, int status) {
    INFO("status line: " << printable(r.status_line));
    CHECK(r.status == status);
    CHECK(r.status_line.starts_with("HTTP/1.1 " + std::to_string(status) + " "));
    CHECK(r.status_line.size() > 13);  // a reason phrase follows the code
    CHECK(header(r, "Content-Length") != "(missing)");
}

// A directory named without its slash: refused (403, 404), or redirected to
// the slash form (RFC 9110 15.4; nginx answers 301 with that Location).
bool refused_or_slash_redirect(const HttpResponse& r, const std::string& target) {
    if (r.status == 403 || r.status == 404) return true;
    std::string location = r.header("Location").value_or("");
    return r.status / 100 == 3 && location.ends_with(target + "/");
}

HttpResponse round_trip(Connection& c, const std::string& request, bool head = false) {
    c.send(request);
    return read_http_response(c, head);
}

}  // namespace

TEST_CASE("http: GET serves a file with Content-Length and Content-Type", "[http]") {
    const DocumentRoot& d = document_root();
    Connection c = server().connect();

    HttpResponse index = round_trip(c, http_request("GET", "/index.html"));
    check_well_formed(index, 200);
    CHECK(header(index, "Content-Length") == std::to_string(d.index_html.size()));
    CHECK_THAT(header(index, "Content-Type"), Catch::Matchers::StartsWith("text/html"));
    CHECK(compare_bytes(index.body, d.index_html) == "same");

    struct Case {
        std::string target, body;
    };
    const std::vector<Case> cases = {
        {"/", d.index_html},
        {"/hello.txt", d.hello_txt},
        {"/hello.txt?query=ignored&bad=%zz", d.hello_txt},
        {"/with%20space.txt", "a name with a space\n"},
        {"/%68ello.txt", d.hello_txt},
        {"/subdir/inner.txt", "inside a subdirectory\n"},
        {"/empty.txt", ""},
    };
    for (const Case& t : cases) {
        INFO("GET " << t.target);
        HttpResponse r = round_trip(c, http_request("GET", t.target));
        check_well_formed(r, 200);
        CHECK(header(r, "Content-Length") == std::to_string(t.body.size()));
        CHECK(header(r, "Content-Type") != "(missing)");
        CHECK(compare_bytes(r.body, t.body) == "same");
    }
}

TEST_CASE("http: GET of a 64 MiB file arrives byte for byte", "[http][large]") {
    Connection c = server().connect();
    HttpResponse r = round_trip(c, http_request("GET", "/big.bin"));
    check_well_formed(r, 200);
    CHECK(header(r, "Content-Length") == std::to_string(big_file_size));
    CHECK(compare_bytes(r.body, big_file()) == "same");
}

TEST_CASE("http: HEAD sends GET's headers and no body", "[http]") {
    const DocumentRoot& d = document_root();
    Connection c = server().connect();
    HttpResponse head = round_trip(c, http_request("HEAD", "/index.html"), true);
    check_well_formed(head, 200);
    CHECK(header(head, "Content-Length") == std::to_string(d.index_html.size()));
    CHECK_THAT(header(head, "Content-Type"), Catch::Matchers::StartsWith("text/html"));
    // Had a body been sent, this response would be read from its bytes.
    HttpResponse next = round_trip(c, http_request("GET", "/hello.txt"));
    check_well_formed(next, 200);
    CHECK(compare_bytes(next.body, d.hello_txt) == "same");

    HttpResponse big = round_trip(c, http_request("HEAD", "/big.bin"), true);
    CHECK(header(big, "Content-Length") == std::to_string(big_file_size));
    std::string more = c.read_for(200ms);
    CHECK(printable(more) == printable(""));
}

TEST_CASE("http: POST /echo answers 200 with the same body", "[http][echo]") {
    Connection c = server().connect();
    std::string binary;
    for (int i = 0; i < 256; ++i)
        binary.push_back(static_cast<char>(i));
    const std::vector<std::string> bodies = {
        "hello",
        "",
        "line one\r\nline two\r\n\r\nnot headers\n",
        binary,
        std::string(1024 * 1024, 'm'),  // exactly the 1 MiB limit
    };
    for (const std::string& body : bodies) {
        INFO("body: " << printable(body, 60));
        std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
        HttpResponse r = round_trip(c, http_request("POST", "/echo", length, "HTTP/1.1", body));
        check_well_formed(r, 200);
        CHECK(header(r, "Content-Length") == std::to_string(body.size()));
        CHECK(compare_bytes(r.body, body) == "same");
    }
}

TEST_CASE("http: keep-alive follows the HTTP version and the Connection header", "[http]") {
    const DocumentRoot& d = document_root();
    Connection c = server().connect();

    SECTION("HTTP/1.1 keeps the connection open") {
        for (int i = 0; i < 3; ++i) {
            HttpResponse r = round_trip(c, http_request("GET", "/hello.txt"));
            check_well_formed(r, 200);
            CHECK(compare_bytes(r.body, d.hello_txt) == "same");
        }
    }
    SECTION("HTTP/1.1 with Connection: close closes after the response") {
        HttpResponse r = round_trip(c, http_request("GET", "/hello.txt", "Connection: close\r\n"));
        check_well_formed(r, 200);
        CHECK(compare_bytes(r.body, d.hello_txt) == "same");
        c.wait_for_close();
    }
    SECTION("HTTP/1.0 closes after the response, and the status line says HTTP/1.1") {
        HttpResponse r = round_trip(c, "GET /hello.txt HTTP/1.0\r\n\r\n");
        check_well_formed(r, 200);
        CHECK(compare_bytes(r.body, d.hello_txt) == "same");
        c.wait_for_close();
    }
    SECTION("HTTP/1.0 with Connection: keep-alive keeps it open") {
        for (int i = 0; i < 2; ++i) {
            HttpResponse r =
                round_trip(c, "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            check_well_formed(r, 200);
            CHECK(compare_bytes(r.body, d.hello_txt) == "same");
        }
        HttpResponse last = round_trip(c, "GET /hello.txt HTTP/1.0\r\n\r\n");
        check_well_formed(last, 200);
        c.wait_for_close();
    }
    SECTION("an error that keeps the connection open: a 404, then a 200") {
        check_well_formed(round_trip(c, http_request("GET", "/no-such-file")), 404);
        check_well_formed(round_trip(c, http_request("GET", "/hello.txt")), 200);
    }
}

TEST_CASE("http: pipelined requests are answered in order", "[http][pipelining]") {
    const DocumentRoot& d = document_root();
    Connection c = server().connect();
    const bool echo = !options().no_echo;
    c.send(http_request("GET", "/hello.txt") + http_request("HEAD", "/index.html") +
           (echo ? http_request("POST", "/echo", "Content-Length: 4\r\n", "HTTP/1.1", "ping")
                 : http_request("GET", "/hello.txt")) +
           http_request("GET", "/no-such-file") +
           http_request("GET", "/", "Connection: close\r\n"));
    HttpResponse hello = read_http_response(c);
    CHECK(compare_bytes(hello.body, d.hello_txt) == "same");
    HttpResponse head = read_http_response(c, true);
    CHECK(header(head, "Content-Length") == std::to_string(d.index_html.size()));
    HttpResponse third = read_http_response(c);
    CHECK(compare_bytes(third.body, echo ? "ping" : d.hello_txt) == "same");
    HttpResponse missing = read_http_response(c);
    CHECK(missing.status == 404);
    HttpResponse index = read_http_response(c);
    CHECK(compare_bytes(index.body, d.index_html) == "same");
    c.wait_for_close();
}

TEST_CASE("http: a request sent one byte at a time is answered", "[http]") {
    Connection c = server().connect();
    c.send_byte_by_byte(http_request("GET", "/hello.txt"));
    HttpResponse hello = read_http_response(c);
    CHECK(compare_bytes(hello.body, document_root().hello_txt) == "same");
    if (options().no_echo) {
        NOT_CHECKED("a POST /echo sent one byte at a time", "--no-echo");
        return;
    }
    c.send_byte_by_byte(
        http_request("POST", "/echo", "Content-Length: 9\r\n", "HTTP/1.1", "bytewise!"));
    HttpResponse echo = read_http_response(c);
    CHECK(compare_bytes(echo.body, "bytewise!") == "same");
}

TEST_CASE("http: errors are proper HTTP responses with the right status", "[http][errors]") {
    // 40 KiB of headers: over iolab's 16 KiB, and over nginx's default
    // (four 8 KiB buffers), whose 400 RFC 6585 allows as well as 431.
    std::string big_headers;
    for (int i = 0; i < 40; ++i)
        big_headers += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'h') + "\r\n";

    struct Case {
        const char* what;
        std::string request;
        std::vector<int> statuses;  // any of these
        bool echo = false;          // asks POST /echo (left out with --no-echo)
        std::string echoed = "";    // the body of a 200 to that POST
    };
    const std::vector<Case> cases = {
        {"a missing file", http_request("GET", "/no-such-file"), {404}},
        {"a directory with a slash", http_request("GET", "/subdir/"), {403, 404}},
        {"PUT", http_request("PUT", "/hello.txt", "Content-Length: 0\r\n"), {405}},
        {"DELETE", http_request("DELETE", "/hello.txt"), {405}},
        {"HTTP/1.1 without Host", "GET /hello.txt HTTP/1.1\r\n\r\n", {400}},
        {"a header without a colon", http_request("GET", "/hello.txt", "no colon here\r\n"), {400}},
        {"a malformed percent escape", http_request("GET", "/%zzhello.txt"), {400}},
        // RFC 9112 6.3: no Content-Length is a body of 0 bytes, which may
        // be echoed, or refused with 411 (RFC 9110 15.5.12) as iolab does.
        {"POST without Content-Length", http_request("POST", "/echo"), {411, 200}, true},
        {"a body over 1 MiB (refused before it is sent)",
         http_request("POST", "/echo", "Content-Length: 1048577\r\n"),
         {413},
         true},
        {"a target over 8 KiB", http_request("GET", "/" + std::string(9000, 'u')), {414}},
        {"headers of 40 KiB", http_request("GET", "/hello.txt", big_headers), {431, 400}},
        {"HTTP/2.0", "GET /hello.txt HTTP/2.0\r\nHost: iolab\r\n\r\n", {505}},
        // Refused by iolab (no chunked bodies); a server that decodes them,
        // as RFC 9112 7.1 asks of HTTP/1.1, echoes "ping".
        {"Transfer-Encoding",
         http_request("POST", "/echo", "Transfer-Encoding: chunked\r\n", "HTTP/1.1",
                      "4\r\nping\r\n0\r\n\r\n"),
         {501, 400, 200},
         true,
         "ping"},
    };
    for (const Case& t : cases) {
        INFO(t.what << ": " << printable(t.request, 120));
        if (t.echo && options().no_echo) {
            NOT_CHECKED(t.what, "--no-echo");
            continue;
        }
        Connection c = server().connect();
        HttpResponse r = round_trip(c, t.request);
        CHECK_THAT(t.statuses, Catch::Matchers::VectorContains(r.status));
        check_well_formed(r, r.status);
        if (t.echo && r.status == 200) CHECK(compare_bytes(r.body, t.echoed) == "same");
    }
    // A directory named without its slash: refused, or redirected to "/subdir/".
    Connection c = server().connect();
    HttpResponse r = round_trip(c, http_request("GET", "/subdir"));
    INFO("GET /subdir: " << printable(r.status_line)
                         << ", Location: " << r.header("Location").value_or("(none)"));
    CHECK(refused_or_slash_redirect(r, "/subdir"));
    check_well_formed(r, r.status);
}

TEST_CASE("http: an error to HEAD has no body", "[http][errors]") {
    Connection c = server().connect();
    HttpResponse r = round_trip(c, http_request("HEAD", "/no-such-file"), true);
    check_well_formed(r, 404);
    HttpResponse next = round_trip(c, http_request("GET", "/hello.txt"));
    check_well_formed(next, 200);
}
