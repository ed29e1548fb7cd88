// Path tricks: `..` in every encoding, NUL bytes, absolute paths, symlinks
// out of the root (one of them swapped while it is being requested), and
// files that are not regular files. Every attempt gets a 4xx, at once;
// no byte of a file outside the root is ever sent.
//
// The conformance suite checks the plain cases; these are the ones that
// catch a server checking a path and then opening another: decoding twice,
// normalising by hand, or checking a symlink's target before open().
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "adversarial.hpp"

using namespace adversarial;

namespace {

bool leaks_outside_content(const std::string& reply) {
    return reply.find(document_root().secret) != std::string::npos ||
           reply.find("root:x:0:0") != std::string::npos;  // /etc/passwd
}

// A directory, a FIFO, a socket is refused: an error status (iolab: 403;
// nginx: 500 for a socket, whose open() fails with ENXIO). RFC 9110 also
// lets a server redirect a directory's name to its slash form (nginx: 301
// to "/subdir/"), which is then refused itself.
bool refused_or_slash_redirect(const HttpResponse& r, const std::string& target) {
    if (r.status >= 400) return true;
    std::string location = r.header("Location").value_or("");
    return r.status / 100 == 3 && !target.ends_with('/') && location.ends_with(target + "/");
}

// An HTTP GET on a keep-alive connection; returns the response.
HttpResponse http_get(Connection& c, const std::string& target) {
    c.send("GET " + target + " HTTP/1.1\r\nHost: iolab\r\n\r\n");
    return read_http_response(c);
}

}  // namespace

TEST_CASE("paths: .. in every encoding, NUL and absolute paths never leave the root",
          "[paths][security]") {
    // Decoded once (HTTP), these all name something outside the root, or
    // something that does not exist.
    const std::vector<std::string> targets = {
        "/..",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/subdir/..%2f..%2fsecret.txt",
        "/subdir/%2e%2e/%2e%2e/secret.txt",
        "/%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%255csecret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",  // overlong UTF-8 for '.': bytes, not dots
        "/..;/secret.txt",
        "/....//secret.txt",
        "/./../secret.txt",
        "/subdir/./../../secret.txt",
        "/hello.txt%00/../../secret.txt",
        "/%00../secret.txt",
        "/%2500/../secret.txt",
        "//etc/passwd",
        "///etc/passwd",
        "/%2fetc/passwd",
        "/%2f%2fetc%2fpasswd",
        "/etc/passwd",
        "/proc/self/root/etc/passwd",
        "/proc/self/cwd/../secret.txt",
        "/escape_relative",
        "/escape_absolute",
        "/escape_directory/secret.txt",
        "/escape%5fdirectory/secret.txt",
        "/escape_device",
    };
    Server s;
    {
        Connection c = s.connect();
        for (const std::string& target : targets) {
            INFO("HTTP GET " << target);
            HttpResponse r = http_get(c, target);
            INFO("response body: " << printable(r.body));
            CHECK(r.status / 100 == 4);
            CHECK_FALSE(leaks_outside_content(r.body));
            if (r.header("Connection") == "close") c = s.connect();
        }
        // The line protocol takes its path literally, decoding nothing.
        if (options().http_only) NOT_CHECKED("the same tricks as line GETs", "--http-only");
        for (const char* path :
             options().http_only
                 ? std::vector<const char*>{}
                 : std::vector<const char*>{
                       "../secret.txt", "/../secret.txt", "subdir/../../secret.txt",
                       "..\\secret.txt", "//etc/passwd", "/etc/passwd", "escape_relative",
                       "escape_absolute", "escape_directory/secret.txt", "escape_device"}) {
            INFO("line GET " << path);
            LineGetReply reply = line_get(c, path);
            CHECK(reply.status_line.starts_with("ERR 4"));
            CHECK_FALSE(leaks_outside_content(reply.body));
        }
        if (!options().http_only) {
            std::string nul_path("GET hello.txt\0/../../secret.txt\n", 32);
            c.send(nul_path);
            CHECK(c.read_line().starts_with("ERR 4"));
        }
    }
    s.check_alive_then_stop();
}

TEST_CASE("paths: a target is percent-decoded exactly once", "[paths]") {
    // %2541 decodes once to %41 (the file named "%41.txt"), twice to A.
    const DocumentRoot& d = document_root();
    Server s;
    {
        Connection c = s.connect();
        HttpResponse once = http_get(c, "/%2541.txt");
        CHECK(once.status == 200);
        CHECK(compare_bytes(once.body, d.percent_41_txt) == "same");
        HttpResponse plain = http_get(c, "/%41.txt");  // decodes to A.txt
        CHECK(plain.status == 200);
        CHECK(compare_bytes(plain.body, d.a_txt) == "same");
        // The line protocol decodes nothing: "%41.txt" is that file.
        if (options().http_only) {
            NOT_CHECKED("a line GET decodes nothing", "--http-only");
        } else {
            LineGetReply literal = line_get(c, "%41.txt");
            CHECK(compare_bytes(literal.body, d.percent_41_txt) == "same");
        }
    }
    s.check_alive_then_stop();
}

TEST_CASE("paths: directories, FIFOs (even with a writer) and sockets are refused at once",
          "[paths]") {
    const DocumentRoot& d = document_root();
    // A writer keeps the FIFO open and full: a server that opened it for
    // reading would get bytes forever instead of blocking.
    iolab::Fd writer(::open((d.root + "/fifo").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    REQUIRE(writer);
    std::string filler(4096, 'f');
    while (::write(writer.get(), filler.data(), filler.size()) > 0) {
    }
    Server s;
    {
        Connection c = s.connect();
        if (options().http_only) NOT_CHECKED("the same paths as line GETs", "--http-only");
        for (const char* path : options().http_only
                                    ? std::vector<const char*>{}
                                    : std::vector<const char*>{"subdir", "subdir/", "/", "fifo",
                                                               "socket", "escape_device"}) {
            // "/" is index.html; the others must be refused.
            INFO("line GET " << path);
            LineGetReply reply = line_get(c, path);
            if (std::string(path) == "/")
                CHECK(reply.status_line.starts_with("OK "));
            else
                CHECK(reply.status_line.starts_with("ERR 4"));
        }
        for (const char* target : {"/subdir", "/subdir/", "/fifo", "/socket", "/escape_device"}) {
            INFO("HTTP GET " << target);
            HttpResponse r = http_get(c, target);
            INFO("status line: " << printable(r.status_line));
            CHECK(refused_or_slash_redirect(r, target));
            CHECK(r.body.find("inner.txt") == std::string::npos);  // no listing
            if (r.header("Connection") == "close") c = s.connect();
        }
        CHECK(answers(c, "not blocked"));
    }
    s.check_alive_then_stop();
}

TEST_CASE("paths: a symlink swapped while it is requested never leads outside the root",
          "[paths][security][race]") {
    // A thread flips root/swap between hello.txt (inside) and ../secret.txt
    // (outside) with atomic renames, while the client asks for it 200 times.
    // A server that checks the target and then opens the path (two lookups)
    // would sooner or later open the outside file; one that opens once with
    // the check built in (openat2 with RESOLVE_BENEATH) never does.
    const DocumentRoot& d = document_root();
    const std::string link = d.root + "/swap";
    const std::string staging = d.base + "/swap.new";  // renamed over `link`
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        for (bool outside = true; !stop.load(); outside = !outside) {
            ::unlink(staging.c_str());
            if (::symlink(outside ? "../secret.txt" : "hello.txt", staging.c_str()) == 0)
                std::rename(staging.c_str(), link.c_str());
            std::this_thread::sleep_for(50us);
        }
    });
    struct StopFlipper {
        std::atomic<bool>& stop;
        std::thread& flipper;
        ~StopFlipper() {
            stop = true;
            flipper.join();
        }
    } stop_flipper{stop, flipper};

    Server s;
    int served_inside = 0, refused = 0;
    {
        // At least 200 requests, and on until both sides of the flip have been
        // seen: on a busy machine the flipper may sleep through many requests.
        // Bounded in count and time so a flipper that never runs still ends.
        Connection c = s.connect();
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < deadline; ++i) {
            if (i >= 200 && (served_inside > 0 || expect().no_symlinks) && refused > 0) break;
            std::string status, body;
            if (i % 2 == 0 && !options().http_only) {
                LineGetReply reply = line_get(c, "swap");
                status = reply.status_line;
                body = reply.body;
                if (reply.status_line.starts_with("OK "))
                    ++served_inside;
                else
                    ++refused;
            } else {
                HttpResponse r = http_get(c, "/swap");
                status = r.status_line;
                body = r.body;
                if (r.status == 200)
                    ++served_inside;
                else
                    ++refused;
                if (r.header("Connection") == "close") c = s.connect();
            }
            INFO("request " << i << ": " << printable(status) << " " << printable(body));
            CHECK_FALSE(leaks_outside_content(body));
            if (status.starts_with("OK ") || status.starts_with("HTTP/1.1 200"))
                CHECK(compare_bytes(body, d.hello_txt) == "same");
        }
    }
    INFO(served_inside << " served from inside, " << refused << " refused");
    if (expect().no_symlinks) {
        CHECK(served_inside == 0);  // what --no-symlinks says: no symlink is followed
        NOT_CHECKED("the race was run (a symlink inside the root is served)", "--no-symlinks");
    } else {
        CHECK(served_inside > 0);  // both sides of the flip were seen:
    }
    CHECK(refused > 0);  // the race was really run
    s.check_alive_then_stop();
}
