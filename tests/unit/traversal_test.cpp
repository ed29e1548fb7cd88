// Path traversal through the whole Session, in both flavours of the protocol.
// A secret file sits next to the document root; whatever the request, its
// bytes must never come back, and no attempt may be answered as a success.
#include <string>
#include <vector>

#include "protocol.hpp"
#include "unit_support.hpp"

using namespace std::string_literals;
using iolab::Response;
using namespace iolab::test;

namespace {

// The attempts, written as paths. The line flavour sends them as they are;
// the HTTP flavour puts a '/' in front when there is none.
std::vector<std::string> attempts(const std::string& base) {
    return {
        // Plain dot-dot.
        "..",
        "../",
        "../secret.txt",
        "/../secret.txt",
        "./../secret.txt",
        "sub/../../secret.txt",
        "../../etc/passwd",
        "../../../../../../../../etc/passwd",
        // Percent-encoded dot-dot (only the HTTP flavour decodes).
        "%2e%2e/secret.txt",
        "%2E%2E/%2E%2E/etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2fsecret.txt",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2fsecret.txt",
        "sub/%2e%2e/%2e%2e/secret.txt",
        // Double encoding: decoded once, it is a literal "%2e%2e" name.
        "%252e%252e/secret.txt",
        "%252e%252e%252fsecret.txt",
        // Absolute paths: relative to the root, whatever the leading slashes.
        "/etc/passwd",
        "//etc/passwd",
        "///etc/passwd",
        base + "/secret.txt",
        "/" + base + "/secret.txt",
        "/proc/self/root/etc/passwd",
        "/proc/self/root" + base + "/secret.txt",
        // Dots that are not dot-dot, and backslashes (ordinary name bytes on Linux).
        "....//secret.txt",
        "....//....//etc/passwd",
        ".../secret.txt",
        "..\\secret.txt",
        "..\\..\\etc\\passwd",
        "%5c..%5csecret.txt",
        // NUL bytes, encoded and raw.
        "%00",
        "..%00/secret.txt",
        "../secret.txt%00.html",
        "hello.txt%00/../../secret.txt",
        "hello.txt\0/../../secret.txt"s,
        // Symlinks that leave the root.
        "link_out",
        "link_abs",
        "link_dir_out/secret.txt",
        "link_dir_out/root/../secret.txt",
        "link_root/etc/passwd",
        "link_root" + base + "/secret.txt",
    };
}

// True when `r` looks like a successful reply in either flavour.
bool is_success(const Response& r) {
    return r.head.starts_with("OK ") || r.head.starts_with("HTTP/1.1 2");
}

}  // namespace

TEST_CASE_METHOD(TempRoot, "No request reaches a file outside the root", "[security][protocol]") {
    // The secret is really there, one `..` away: a refusal is not luck.
    REQUIRE(read_whole_file(base() + "/secret.txt") == kSecret);

    for (const std::string& path : attempts(base())) {
        const std::string line_request = "GET " + path + "\n";
        const std::string target = path.starts_with('/') ? path : "/" + path;
        const std::string http = http_request("GET", target);
        for (const std::string& request : {line_request, http}) {
            CAPTURE(request);
            const std::vector<Response> responses = run_session(docroot(), request, /*eof=*/true);
            REQUIRE(responses.size() == 1);  // refused, with a reply
            const Response& r = responses[0];
            CHECK_FALSE(is_success(r));
            CHECK(r.is_error);
            CHECK_FALSE(r.file.valid());
            const std::string bytes = wire_bytes(r);
            CHECK(bytes.find(kSecretMarker) == std::string::npos);
            CHECK(bytes.find("root:") == std::string::npos);  // /etc/passwd
        }
    }
}

TEST_CASE_METHOD(TempRoot, "Traversal refusals use the documented statuses",
                 "[security][protocol]") {
    // Line flavour: a refusal is 403, 404 or 400, nothing else.
    for (const std::string path : {"../secret.txt", "link_out", "link_abs", "/etc/passwd"}) {
        CAPTURE(path);
        const std::string head = only_response(docroot(), "GET " + path + "\n").head;
        CHECK((head == "ERR 403 forbidden\n" || head == "ERR 404 not found\n"));
    }
    // HTTP flavour: decoded dot-dot is still refused (403 or 404), a bad escape is 400.
    for (const std::string target : {"/%2e%2e/secret.txt", "/..%2fsecret.txt", "/link_out"}) {
        CAPTURE(target);
        const int status = parse_http(only_response(docroot(), http_request("GET", target))).status;
        CHECK((status == 403 || status == 404));
    }
    CHECK(parse_http(only_response(docroot(), http_request("GET", "/..%00/secret.txt"))).status ==
          400);
}

TEST_CASE_METHOD(TempRoot, "Symlinks and dot-dot that stay inside the root are served",
                 "[security][protocol]") {
    // The other half of the check: refusing everything would pass the tests above.
    for (const std::string path : {"link_in", "sub/link_up", "sub/../hello.txt"}) {
        CAPTURE(path);
        const Response line = only_response(docroot(), "GET " + path + "\n");
        CHECK(line.head == "OK 13\n");
        CHECK(file_bytes(line) == kHello);
        const Response http = only_response(docroot(), http_request("GET", "/" + path));
        CHECK(parse_http(http).status == 200);
        CHECK(file_bytes(http) == kHello);
    }
}
