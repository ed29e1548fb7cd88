// DocRoot: every file a request names is opened beneath the root, or refused.
// Also percent_decode() and content_type(), the two helpers around it.
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "docroot.hpp"
#include "unit_support.hpp"

using namespace std::string_literals;
using iolab::DocRoot;
using iolab::OpenedFile;
using namespace iolab::test;

namespace {

// The content of an opened file, read through its descriptor.
std::string content_of(const OpenedFile& f) {
    std::string out(f.size, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n =
            ::pread(f.file.get(), out.data() + done, out.size() - done, static_cast<off_t>(done));
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
    return out;
}

}  // namespace

TEST_CASE("DocRoot needs an existing directory", "[docroot]") {
    REQUIRE_THROWS_AS(DocRoot("/nonexistent/iolab-unit-root"), std::system_error);
    TempRoot t;
    REQUIRE_THROWS_AS(DocRoot(t.root_path() + "/hello.txt"), std::system_error);
    REQUIRE_NOTHROW(DocRoot(t.root_path()));
}

TEST_CASE_METHOD(TempRoot, "DocRoot opens regular files beneath the root", "[docroot]") {
    struct Case {
        std::string path;
        std::string_view content;
    };
    const std::vector<Case> cases = {
        {"hello.txt", kHello},
        {"/hello.txt", kHello},
        {"//hello.txt", kHello},
        {"./hello.txt", kHello},
        {"", kIndex},  // the root itself means index.html
        {"/", kIndex},
        {"index.html", kIndex},
        {"sub/page.html", kPage},
        {"/sub/page.html", kPage},
        {"sub/../hello.txt", kHello},  // `..` that stays inside is fine
        {"sub/./page.html", kPage},
        {"empty.txt", ""},
        {"with space.txt", "spaced out\n"},
        {"pct%41.txt", "a literal percent sign\n"},  // open() does not decode
        {"link_in", kHello},                         // a relative symlink inside the root
        {"link_sub", kPage},
        {"sub/link_up", kHello},  // a symlink with `..` that stays inside
    };
    for (const Case& c : cases) {
        CAPTURE(c.path);
        const OpenedFile f = docroot().open(c.path);
        REQUIRE(f.status == 200);
        REQUIRE(f.file.valid());
        CHECK(f.size == c.content.size());
        CHECK(content_of(f) == c.content);
    }
}

TEST_CASE_METHOD(TempRoot, "DocRoot answers 404 for what does not exist", "[docroot]") {
    for (const std::string path : {"missing.txt", "/missing.txt", "sub/missing", "nodir/file"}) {
        CAPTURE(path);
        const OpenedFile f = docroot().open(path);
        CHECK(f.status == 404);
        CHECK_FALSE(f.file.valid());
    }
}

TEST_CASE_METHOD(TempRoot, "DocRoot refuses directories with 403", "[docroot]") {
    for (const std::string path : {"sub", "sub/", "/sub/", "sub/.."}) {
        CAPTURE(path);
        const OpenedFile f = docroot().open(path);
        CHECK(f.status == 403);
        CHECK_FALSE(f.file.valid());
    }
}

TEST_CASE_METHOD(TempRoot, "DocRoot refuses a FIFO with 403, without blocking", "[docroot]") {
    FifoWatchdog watchdog(root_path() + "/fifo");
    const OpenedFile f = docroot().open("fifo");
    const bool blocked = watchdog.stop();
    CHECK_FALSE(blocked);  // open() of a FIFO with no writer blocks unless O_NONBLOCK
    CHECK(f.status == 403);
    CHECK_FALSE(f.file.valid());
}

TEST_CASE_METHOD(TempRoot, "DocRoot refuses an unreadable file with 403", "[docroot]") {
    if (::geteuid() == 0) {
        WARN("running as root: mode 000 does not stop root from reading, nothing to test");
        return;
    }
    const OpenedFile f = docroot().open("unreadable.txt");
    CHECK(f.status == 403);
    CHECK_FALSE(f.file.valid());
}

TEST_CASE_METHOD(TempRoot, "DocRoot never opens a file outside the root", "[docroot][security]") {
    const std::vector<std::string> paths = {
        "..",
        "../secret.txt",
        "/../secret.txt",
        "sub/../../secret.txt",
        "../root/../secret.txt",
        "../../../../../../../etc/passwd",
        "link_out",                 // relative symlink climbing out
        "link_abs",                 // absolute symlink to the secret
        "link_abs_in",              // absolute symlink, even to a file inside
        "link_dir_out/secret.txt",  // through a directory symlink that climbs out
        "link_root/etc/passwd",     // through a symlink to /
        "link_loop",                // ELOOP
    };
    for (const std::string& path : paths) {
        CAPTURE(path);
        const OpenedFile f = docroot().open(path);
        CHECK((f.status == 403 || f.status == 404));
        CHECK_FALSE(f.file.valid());
    }
    // The secret is really there: the refusals above are not just 404s by luck.
    CHECK(read_whole_file(base() + "/secret.txt") == kSecret);
}

TEST_CASE_METHOD(TempRoot, "DocRoot answers 400 for a path with a NUL byte",
                 "[docroot][security]") {
    for (const std::string& path :
         {"hello.txt\0"s, "hello.txt\0.html"s, "\0"s, "sub\0/page.html"s, "../secret.txt\0"s}) {
        CAPTURE(path);
        const OpenedFile f = docroot().open(path);
        CHECK(f.status == 400);
        CHECK_FALSE(f.file.valid());
    }
}

TEST_CASE("percent_decode decodes every %XX escape exactly once", "[docroot][decode]") {
    struct Case {
        std::string in;
        std::optional<std::string> out;  // nothing: must be rejected
    };
    const std::vector<Case> cases = {
        {"", ""},
        {"plain/path.txt", "plain/path.txt"},
        {"%41", "A"},
        {"%4a%4A", "JJ"},  // both cases of hex digits
        {"a%20b", "a b"},
        {"%2e%2e/%2E%2E", "../.."},
        {"%2f", "/"},
        {"%252e", "%2e"},  // decoded once: a double encoding stays encoded
        {"%25", "%"},
        {"+", "+"},  // not form encoding: '+' is not a space
        {"%ff%80", "\xff\x80"},
        {"%7E~", "~~"},
        // Malformed escapes.
        {"%", std::nullopt},
        {"%4", std::nullopt},
        {"a%", std::nullopt},
        {"a%4", std::nullopt},
        {"%zz", std::nullopt},
        {"%g0", std::nullopt},
        {"%0g", std::nullopt},
        {"%%41", std::nullopt},
        {"% 41", std::nullopt},
        // NUL, encoded or raw.
        {"%00", std::nullopt},
        {"a%00b", std::nullopt},
        {"a\0b"s, std::nullopt},
    };
    for (const Case& c : cases) {
        CAPTURE(c.in);
        std::string out;
        const bool ok = iolab::percent_decode(c.in, out);
        CHECK(ok == c.out.has_value());
        if (ok && c.out) CHECK(out == *c.out);
    }
}

TEST_CASE("content_type goes by the file's extension", "[docroot]") {
    using iolab::content_type;
    CHECK(content_type("index.html").starts_with("text/html"));
    CHECK(content_type("/sub/page.html").starts_with("text/html"));
    CHECK(content_type("notes.txt").starts_with("text/plain"));
    CHECK(content_type("style.css").starts_with("text/css"));
    CHECK(content_type("app.js").find("javascript") != std::string_view::npos);
    CHECK(content_type("data.json").starts_with("application/json"));
    CHECK(content_type("image.png") == "image/png");
    CHECK(content_type("photo.jpg") == "image/jpeg");
    // Unknown or no extension.
    CHECK(content_type("blob.bin") == "application/octet-stream");
    CHECK(content_type("Makefile") == "application/octet-stream");
    CHECK(content_type("") == "application/octet-stream");
    CHECK(content_type("html") == "application/octet-stream");  // a name, not an extension
    CHECK(content_type("dir.html/README") ==
          "application/octet-stream");  // the dot is in a directory
}
