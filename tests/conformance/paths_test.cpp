// Path safety: no request reaches a byte outside the document root, and
// paths that are not regular files are refused without hanging the server.
//
// The root's parent holds secret.txt with a unique marker; the root holds
// symlinks to it (see DocumentRoot in suite.hpp). Every attempt must be a
// 4xx, and the marker must never appear in a reply.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "client.hpp"
#include "conformance.hpp"

using namespace conformance;

namespace {

// Strings that only the real files outside the root contain.
bool leaks_outside_content(const std::string& reply) {
    return reply.find(document_root().secret) != std::string::npos ||
           reply.find("root:x:0:0") != std::string::npos;  // /etc/passwd
}

bool is_line_refusal(const std::string& reply) {
    return reply == "ERR 400 bad path\n" || reply == "ERR 403 forbidden\n" ||
           reply == "ERR 404 not found\n";
}

}  // namespace

TEST_CASE("paths: a line GET never reaches outside the root", "[paths][security][line]") {
    // Taken literally: the line protocol does no percent-decoding, so the
    // encoded forms name files that do not exist.
    const std::vector<std::string> paths = {
        "../secret.txt",
        "/../secret.txt",
        "subdir/../../secret.txt",
        "./../secret.txt",
        "../../../../../../../../../../etc/passwd",
        "/etc/passwd",
        "//etc/passwd",
        "/proc/self/root/etc/passwd",
        "%2e%2e/secret.txt",
        "..%2fsecret.txt",
        "hello.txt%00",
        std::string("../secret.txt\0", 14),
        std::string("hello.txt\0/../../secret.txt", 27),
        "escape_relative",
        "escape_absolute",
        "escape_directory/secret.txt",
        "..\\secret.txt",
    };
    ServerProcess& s = server();
    for (const std::string& path : paths) {
        INFO("GET " << printable(path));
        Connection c = s.connect();
        c.send("GET " + path + "\n");
        std::string reply = c.read_line();
        if (reply.starts_with("OK ")) reply += c.read_for(500ms);  // show what leaked
        INFO("reply: " << printable(reply));
        CHECK(is_line_refusal(reply));
        CHECK_FALSE(leaks_outside_content(reply));
    }
}

TEST_CASE("paths: an HTTP GET never reaches outside the root", "[paths][security][http]") {
    const std::vector<std::string> targets = {
        "/../secret.txt",
        "/subdir/../../secret.txt",
        "/../../../../../../../../../../etc/passwd",
        "/etc/passwd",
        "//etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2f%2e%2e%2fsecret.txt",
        "/subdir/..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",  // decoded once: a name with '%' in it
        "/hello.txt%00",
        "/%00/../secret.txt",
        "/../secret.txt%00.html",
        "/escape_relative",
        "/escape_absolute",
        "/escape_directory/secret.txt",
        "/escape%5fdirectory/secret.txt",
        "/..\\secret.txt",
        "../secret.txt",               // not origin-form
        "%2e%2e/secret.txt",           // not origin-form
        "http://iolab/../secret.txt",  // absolute-form
        "/proc/self/root/etc/passwd",
    };
    ServerProcess& s = server();
    for (const std::string& target : targets) {
        INFO("GET " << target);
        Connection c = s.connect();
        c.send(http_request("GET", target, "Connection: close\r\n"));
        HttpResponse r = read_http_response(c);
        INFO("response body: " << printable(r.body));
        CHECK_THAT(std::vector<int>({400, 403, 404}), Catch::Matchers::VectorContains(r.status));
        CHECK_FALSE(leaks_outside_content(r.body));
    }
}

TEST_CASE("paths: a directory or a FIFO is refused (ERR 403) without hanging", "[paths][line]") {
    ServerProcess& s = server();
    Connection c = s.connect();
    for (const char* path :
         {"subdir", "subdir/", "/subdir/", "fifo", "/fifo", "escape_directory"}) {
        INFO("line GET " << path);
        std::string reply = line_exchange(c, std::string("GET ") + path);
        CHECK(printable(reply) == printable("ERR 403 forbidden\n"));
    }
    // The server did not get stuck on the FIFO: it still answers.
    std::string reply = line_exchange(c, "ECHO still answering");
    CHECK(printable(reply) == printable("still answering\n"));
}

TEST_CASE("paths: a directory or a FIFO is refused (HTTP 4xx) without hanging", "[paths][http]") {
    ServerProcess& s = server();
    Connection c = s.connect();
    for (const char* target : {"/subdir/", "/fifo", "/escape_directory/"}) {
        INFO("HTTP GET " << target);
        c.send(http_request("GET", target));
        HttpResponse r = read_http_response(c);
        INFO("status line: " << printable(r.status_line));
        CHECK(r.status / 100 == 4);
        CHECK(r.body.find("inner.txt") == std::string::npos);  // no directory listing
        if (r.header("Connection") == "close") c = s.connect();
    }
    // "/subdir" may also be redirected to "/subdir/" (RFC 9110 15.4): the
    // errors test case checks that; here, only that nothing is listed.
    c.send(http_request("GET", "/subdir"));
    HttpResponse r = read_http_response(c);
    CHECK(r.status / 100 != 2);
    CHECK(r.body.find("inner.txt") == std::string::npos);
    if (r.header("Connection") == "close") c = s.connect();
    // The server did not get stuck on the FIFO: it still answers.
    c.send(http_request("GET", "/hello.txt"));
    HttpResponse hello = read_http_response(c);
    CHECK(compare_bytes(hello.body, document_root().hello_txt) == "same");
}
