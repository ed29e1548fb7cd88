// libFuzzer target for the sans-I/O protocol core (common/protocol.cpp) and
// the path checks under it (common/docroot.cpp).
//
// The sanitizers (ASan, UBSan, LeakSanitizer) catch memory errors, undefined
// behaviour and leaks on their own. What they cannot know is what a *correct*
// answer looks like, so every input is also checked against invariants that
// hold for any byte stream whatsoever:
//
//   1. one-shot run: the input fed in one piece, then EOF. Every response is
//      well formed, a file region is exactly the file it names, a file
//      outside the document root is never handed out, nothing follows a
//      closing response, and the session never buffers more than one request.
//   2. split invariance: the same bytes fed one at a time, and in pieces of
//      pseudo-random sizes, give exactly the same responses. A real client's
//      bytes arrive in whatever chunks TCP makes; the answer cannot depend on it.
//   3. path resolution: the input, and each of its first words, used directly
//      as a path for DocRoot::open() and percent_decode(): never a file
//      outside the root, never a NUL byte, a leading '/' changes nothing.
//
// Each check runs twice: with the protocol's real limits, and with tiny ones,
// so the fuzzer reaches the 414/431/413 edges with inputs of a few hundred
// bytes instead of 16 KiB.
//
// One input runs all three checks, so the seed corpus is plain protocol text
// (no mode byte) and a crash file is exactly the bytes a client would send.
// A broken invariant prints what broke and calls abort(): libFuzzer then
// saves the input as a crash artifact.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "docroot.hpp"
#include "protocol.hpp"

namespace {

using iolab::DocRoot;
using iolab::Limits;
using iolab::OpenedFile;
using iolab::Response;
using iolab::Session;

// ---------------------------------------------------------------------------
// Failing loudly

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "\n*** protocol_fuzz: invariant broken: %s\n", what);
    if (!detail.empty()) {
        // Printable bytes as they are, the rest as \xNN: heads contain CR LF.
        std::string shown;
        for (unsigned char c : detail.substr(0, 512)) {
            if (c >= 0x20 && c < 0x7f) {
                shown += static_cast<char>(c);
            } else {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", c);
                shown += hex;
            }
        }
        std::fprintf(stderr, "*** detail: %s\n", shown.c_str());
    }
    std::abort();
}

void require(bool ok, const char* what, std::string_view detail = {}) {
    if (!ok) fail(what, detail);
}

// ---------------------------------------------------------------------------
// The document root, built once per process
//
//   <base>/secret.txt               outside the root: never to be served
//   <base>/root/                    the document root
//       index.html hello.txt empty.txt style.css "with space.txt" "pct%41.txt"
//       fifo                        a named pipe (opening it must not block)
//       sub/page.html
//       sub/link_up   -> ../hello.txt        (inside)
//       link_in       -> hello.txt           (inside)
//       link_out      -> ../secret.txt       (relative, escapes)
//       sub/link_out2 -> ../../secret.txt    (relative, escapes from a subdir)
//       link_abs      -> <base>/secret.txt   (absolute)
//       link_dir_out  -> ..                  (a directory outside)
//       link_root     -> /
//       link_loop     -> link_loop
//
// The names are those of tests/unit's TempRoot (a subset), so a seed that
// works in a unit test works here too.

struct Fixture {
    std::string base;
    std::optional<DocRoot> docroot;
    dev_t secret_dev = 0;
    ino_t secret_ino = 0;
    // Every regular file beneath the root, by inode: the only files a 200 may hand out.
    std::map<ino_t, off_t> served_files;
};

Fixture* fixture = nullptr;

void write_file(const std::string& path, std::string_view content) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    require(f != nullptr, "setup: cannot create a file", path);
    require(std::fwrite(content.data(), 1, content.size(), f) == content.size(), "setup: write");
    std::fclose(f);
}

void remove_fixture() {
    if (fixture == nullptr) return;
    std::error_code ignored;
    std::filesystem::remove_all(fixture->base, ignored);
}

void build_fixture() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/iolab-fuzz-XXXXXX";
    require(::mkdtemp(pattern.data()) != nullptr, "setup: mkdtemp", pattern);

    fixture = new Fixture;  // lives as long as the process; LeakSanitizer ignores globals
    fixture->base = pattern;
    const std::string root = fixture->base + "/root";
    std::filesystem::create_directories(root + "/sub");

    write_file(fixture->base + "/secret.txt", "TOP-SECRET: outside the document root\n");
    write_file(root + "/index.html", "<!doctype html>\n<title>fuzz root</title>\n");
    write_file(root + "/hello.txt", "hello, world\n");
    write_file(root + "/empty.txt", "");
    write_file(root + "/style.css", "body { color: black; }\n");
    write_file(root + "/with space.txt", "spaced out\n");
    write_file(root + "/pct%41.txt", "a literal percent sign\n");
    write_file(root + "/sub/page.html", "<p>a page in sub/</p>\n");
    require(::mkfifo((root + "/fifo").c_str(), 0644) == 0, "setup: mkfifo");

    const std::pair<std::string, std::string> links[] = {
        {"sub/link_up", "../hello.txt"},
        {"link_in", "hello.txt"},
        {"link_out", "../secret.txt"},
        {"sub/link_out2", "../../secret.txt"},
        {"link_abs", fixture->base + "/secret.txt"},
        {"link_dir_out", ".."},
        {"link_root", "/"},
        {"link_loop", "link_loop"},
    };
    for (const auto& [name, target] : links) {
        require(::symlink(target.c_str(), (root + "/" + name).c_str()) == 0, "setup: symlink",
                name);
    }

    struct stat info {};
    require(::stat((fixture->base + "/secret.txt").c_str(), &info) == 0, "setup: stat secret");
    fixture->secret_dev = info.st_dev;
    fixture->secret_ino = info.st_ino;

    // Walk the root without following symlinks: what is listed here is
    // exactly what lies beneath the root.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_symlink() || !entry.is_regular_file()) continue;
        require(::lstat(entry.path().c_str(), &info) == 0, "setup: lstat");
        fixture->served_files[info.st_ino] = info.st_size;
    }
    fixture->docroot.emplace(root);
    std::atexit(remove_fixture);  // a crash leaves the directory behind; tests/fuzz/run cleans up
}

// ---------------------------------------------------------------------------
// Checks on one response

// A file handed out must be a regular file beneath the root, never the secret,
// and the region must be the whole file.
void check_file(const Response& r) {
    if (!r.file.valid()) {
        require(r.file_length == 0, "file_length > 0 without a file", r.head);
        return;
    }
    struct stat info {};
    require(::fstat(r.file.get(), &info) == 0, "fstat on a returned fd failed", r.head);
    if (info.st_dev == fixture->secret_dev && info.st_ino == fixture->secret_ino)
        fail("the secret file OUTSIDE the document root was handed out", r.head);
    auto known = fixture->served_files.find(info.st_ino);
    require(known != fixture->served_files.end(), "a file not beneath the root was handed out",
            r.head);
    require(S_ISREG(info.st_mode), "a non-regular file was handed out", r.head);
    require(r.file_offset == 0, "file_offset != 0", r.head);
    require(r.file_length == static_cast<std::uint64_t>(info.st_size),
            "file_length != the file's size", r.head);
}

// The value of header `name` (exact case, as the core writes it), if present.
std::optional<std::string_view> header(std::string_view head, std::string_view name) {
    const std::string needle = "\r\n" + std::string(name) + ": ";
    std::size_t at = head.find(needle);
    if (at == std::string_view::npos) return std::nullopt;
    std::size_t start = at + needle.size();
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) return std::nullopt;
    return head.substr(start, end - start);
}

// A response is either a line reply (exactly one LF, at the end: ECHO's text
// cannot hold an LF, since the LF ended the line) or an HTTP reply. Checking
// the framing here is what a client relies on to find the next response.
void check_response(const Response& r) {
    const std::string_view head = r.head;
    require(!head.empty(), "empty response head");
    check_file(r);

    const bool line_reply = head.find('\n') == head.size() - 1;
    if (line_reply) {
        // "OK <size>\n" is the only line reply that carries a file.
        if (r.file.valid())
            require(head == "OK " + std::to_string(r.file_length) + "\n",
                    "line GET head does not match file_length", head);
        if (r.close_after)
            require(head == "BYE\n" || head == "ERR 414 line too long\n",
                    "unexpected closing line reply", head);
        return;
    }

    require(head.starts_with("HTTP/1.1 "), "neither a line reply nor an HTTP reply", head);
    if (head == "HTTP/1.1 100 Continue\r\n\r\n") {
        require(!r.close_after && !r.file.valid() && !r.is_error, "odd 100 Continue", head);
        return;
    }
    const std::size_t end_of_headers = head.find("\r\n\r\n");
    require(end_of_headers != std::string_view::npos, "HTTP head without an empty line", head);
    require(head.size() >= 13 && head[12] == ' ', "malformed HTTP status line", head);
    const int status = std::atoi(std::string(head.substr(9, 3)).c_str());
    require(status >= 200 && status <= 599, "HTTP status out of range", head);
    require(r.is_error == (status >= 400), "is_error does not match the status", head);

    // The bytes after the head's empty line plus the file region are the
    // body, which Content-Length announces; a reply to HEAD has no body.
    const std::optional<std::string_view> length = header(head, "Content-Length");
    require(length.has_value(), "HTTP reply without Content-Length", head);
    const std::uint64_t body = head.size() - (end_of_headers + 4) + r.file_length;
    const std::string announced(*length);
    require(body == 0 || announced == std::to_string(body),
            "Content-Length does not match the body sent", head);

    const std::optional<std::string_view> connection = header(head, "Connection");
    require(connection == (r.close_after ? "close" : "keep-alive"),
            "Connection header does not match close_after", head);
}

// ---------------------------------------------------------------------------
// Running a session

// What a client can observe of one response.
struct Observed {
    std::string head;
    std::uint64_t file_length = 0;
    bool has_file = false;
    bool close_after = false;
    bool operator==(const Observed&) const = default;
};

// The most a session may hold once it has answered all it can: one request
// line, one header block, or one body still arriving (protocol.hpp: "buffers
// no more than one request's limit").
std::size_t buffer_bound(const Limits& limits) {
    return std::max({limits.max_line + 1, limits.max_header_block + 1, limits.max_body});
}

// Feeds `pieces` one after another, pulling every response after each (as a
// server does), then EOF. Checks every response and the session's promises.
std::vector<Observed> run(const Limits& limits, const std::vector<std::string_view>& pieces) {
    Session session(fixture->docroot.value(), limits);
    std::vector<Observed> out;
    bool closed = false;

    auto drain = [&] {
        while (std::optional<Response> r = session.next_response()) {
            require(!closed, "a response came after a close_after response", r->head);
            check_response(*r);
            out.push_back({r->head, r->file_length, r->file.valid(), r->close_after});
            closed = r->close_after;
            if (closed) require(session.finished(), "close_after but not finished()");
        }
        if (!session.finished())
            require(session.buffered() <= buffer_bound(limits),
                    "the session buffers more than one request");
    };

    for (std::string_view piece : pieces) {
        session.feed(piece);
        drain();
    }
    session.feed_eof();
    drain();
    require(session.finished(), "not finished() after EOF");
    // Once finished, no response ever again, whatever arrives.
    session.feed("ECHO late\n");
    require(!session.next_response().has_value(), "a response after finished()");
    return out;
}

// A small deterministic generator, seeded from the input, so a crash file
// replays with exactly the same chunking.
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        return z ^ (z >> 31);
    }
};

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325u;
    for (unsigned char c : bytes)
        h = (h ^ c) * 0x100000001b3u;
    return h;
}

std::vector<std::string_view> single_bytes(std::string_view input) {
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < input.size(); ++i)
        pieces.push_back(input.substr(i, 1));
    return pieces;
}

// Pieces of 1..max bytes, max itself random: mostly small pieces, so splits
// land between CR and LF, inside "\r\n\r\n", right at a limit...
std::vector<std::string_view> random_pieces(std::string_view input) {
    SplitMix64 random{fnv1a(input)};
    const std::uint64_t max = 1 + random.next() % 64;
    std::vector<std::string_view> pieces;
    while (!input.empty()) {
        std::size_t n = 1 + random.next() % max;
        pieces.push_back(input.substr(0, n));
        input.remove_prefix(pieces.back().size());
    }
    return pieces;
}

// The interim "100 Continue" is compared too: the core sends it whenever a
// request expects it, even if the body came with the headers (RFC 9110
// allows that), precisely so that no reply depends on the chunking.
void check_session(const Limits& limits, std::string_view input) {
    const std::vector<Observed> whole = run(limits, {input});
    // One byte at a time costs a next_response() per byte: kept to inputs of
    // a few KiB, where the tiny limits put every edge anyway. Longer inputs
    // still get random pieces, which are single bytes one time in 64.
    if (input.size() <= 4096 && run(limits, single_bytes(input)) != whole)
        fail("fed one byte at a time, the responses differ from one piece", input);
    if (run(limits, random_pieces(input)) != whole)
        fail("fed in random pieces, the responses differ from one piece", input);
}

// ---------------------------------------------------------------------------
// Path resolution

// An independent %XX decoder to compare percent_decode() with.
std::optional<std::string> reference_decode(std::string_view in) {
    auto hex = [](char c) -> int {
        const std::size_t at = std::string_view("0123456789abcdefABCDEF").find(c);
        if (at == std::string_view::npos) return -1;
        return static_cast<int>(at < 16 ? at : at - 6);
    };
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (in.size() - i < 3 || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return std::nullopt;
            c = static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        }
        if (c == '\0') return std::nullopt;
        out += c;
    }
    return out;
}

void check_open(std::string_view path) {
    OpenedFile opened = fixture->docroot->open(path);
    const int s = opened.status;
    // 503 means out of descriptors: impossible here unless something leaks them.
    require(s == 200 || s == 400 || s == 403 || s == 404, "DocRoot::open: unexpected status", path);
    if (s != 200) {
        require(!opened.file.valid(), "DocRoot::open: an fd with an error status", path);
        return;
    }
    Response r;
    r.head = "(DocRoot::open)";
    r.file = std::move(opened.file);
    r.file_length = opened.size;
    check_file(r);  // beneath the root, not the secret, size right

    // "Leading slashes allowed": the same file with one more.
    OpenedFile again = fixture->docroot->open("/" + std::string(path));
    require(again.status == 200 && again.size == opened.size,
            "DocRoot::open: a leading '/' changed the answer", path);
}

void check_path(std::string_view input) {
    check_open(input);

    std::string decoded = "junk from before";  // percent_decode must clear it
    const bool ok = iolab::percent_decode(input, decoded);
    const std::optional<std::string> expected = reference_decode(input);
    require(ok == expected.has_value(), "percent_decode accepts/refuses wrongly", input);
    if (!ok) return;
    require(decoded.find('\0') == std::string::npos, "percent_decode output holds a NUL", input);
    require(decoded == *expected, "percent_decode decodes wrongly", input);
    check_open(decoded);
}

// The whole input is rarely a path that exists, but its words often are
// ("GET //hello.txt" holds "//hello.txt"), so each of the first few words is
// tried as a path too: that is where the seeds and the dictionary put paths.
void check_paths(std::string_view input) {
    check_path(input);
    constexpr int kMaxWords = 8;  // each costs a few openat2() calls
    int words = 0;
    while (words < kMaxWords) {
        const std::size_t start = input.find_first_not_of(" \r\n");
        if (start == std::string_view::npos) break;
        input.remove_prefix(start);
        const std::size_t end = input.find_first_of(" \r\n");
        check_path(input.substr(0, end));
        ++words;
        if (end == std::string_view::npos) break;
        input.remove_prefix(end);
    }
}

// The lowest free descriptor: if it moved during one input, the core leaked one.
int lowest_free_fd() {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    require(fd >= 0, "open /dev/null");
    ::close(fd);
    return fd;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    build_fixture();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const int first_free_fd = lowest_free_fd();

    check_paths(input);
    check_session(Limits{}, input);
    // Tiny limits (a request line of 48 bytes, 160 of headers, 64 of body),
    // still big enough for "GET /sub/page.html HTTP/1.1" and a Host header.
    check_session(Limits{48, 160, 64}, input);

    require(lowest_free_fd() == first_free_fd, "a file descriptor leaked");
    return 0;
}
