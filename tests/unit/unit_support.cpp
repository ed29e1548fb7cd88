#include "unit_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <system_error>

namespace iolab::test {

namespace {

// Test set-up failures are not test failures: they throw, and Catch reports them.
void check_sys(bool ok, const std::string& what) {
    if (!ok) throw std::system_error(errno, std::generic_category(), what);
}

constexpr int kWaitMs = 5000;  // how long a socket helper waits for the peer

void wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, kWaitMs);
    REQUIRE(n == 1);  // else: nothing arrived within kWaitMs
}

}  // namespace

// ---------------------------------------------------------------------------
// TempRoot

TempRoot::TempRoot() : tree_("unit"), base_(tree_.path()), root_(tree_.directory("root")) {
    tree_.directory("root/sub");
    tree_.file("secret.txt", kSecret);
    add_file("index.html", kIndex);
    add_file("hello.txt", kHello);
    add_file("empty.txt", "");
    add_file("style.css", "body { color: black; }\n");
    add_file("app.js", "console.log('hi');\n");
    add_file("data.json", "{\"ok\": true}\n");
    add_file("image.png", std::string_view("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
    add_file("with space.txt", "spaced out\n");
    add_file("pct%41.txt", "a literal percent sign\n");
    add_file("sub/page.html", kPage);
    add_file("sub/notes.txt", "notes\n");
    add_file("unreadable.txt", "you cannot read me\n");
    tree_.set_mode("root/unreadable.txt", 0);
    tree_.fifo("root/fifo");

    const std::pair<std::string, std::string> links[] = {
        {"sub/link_up", "../hello.txt"},
        {"link_in", "hello.txt"},
        {"link_sub", "sub/page.html"},
        {"link_out", "../secret.txt"},
        {"link_abs", base_ + "/secret.txt"},
        {"link_abs_in", root_ + "/hello.txt"},
        {"link_dir_out", ".."},
        {"link_root", "/"},
        {"link_loop", "link_loop"},
    };
    for (const auto& [name, target] : links)
        tree_.symlink("root/" + name, target);

    docroot_.emplace(root_);
}

TempRoot::~TempRoot() {
    docroot_.reset();  // closes the directory before the tree goes
}

std::string TempRoot::add_file(const std::string& relative, std::string_view content) const {
    return tree_.file("root/" + relative, content);
}

// ---------------------------------------------------------------------------
// Sessions

std::vector<Response> drain(Session& session) {
    constexpr std::size_t kTooMany = 100000;
    std::vector<Response> out;
    while (auto r = session.next_response()) {
        out.push_back(std::move(*r));
        if (out.size() > kTooMany) FAIL("next_response() keeps returning responses");
    }
    return out;
}

std::vector<Response> feed_all(Session& session, std::string_view input, std::size_t chunk) {
    std::vector<Response> out;
    do {
        const std::string_view piece = input.substr(0, chunk);
        input.remove_prefix(piece.size());
        session.feed(piece);
        for (auto& r : drain(session))
            out.push_back(std::move(r));
    } while (!input.empty());
    return out;
}

std::vector<Response> run_session(const DocRoot& root, std::string_view input, bool eof) {
    Session session(root);
    std::vector<Response> out = feed_all(session, input);
    if (eof) {
        session.feed_eof();
        for (auto& r : drain(session))
            out.push_back(std::move(r));
        CHECK(session.finished());
    }
    return out;
}

std::vector<Response> run_pieces(const DocRoot& root, const std::vector<std::string_view>& pieces) {
    Session session(root);
    std::vector<Response> out;
    for (const std::string_view piece : pieces) {
        session.feed(piece);
        for (auto& r : drain(session))
            out.push_back(std::move(r));
    }
    session.feed_eof();
    for (auto& r : drain(session))
        out.push_back(std::move(r));
    return out;
}

Response only_response(const DocRoot& root, std::string_view input) {
    std::vector<Response> responses = run_session(root, input);
    REQUIRE(responses.size() == 1);
    return std::move(responses.front());
}

std::vector<Summary> summarize(const std::vector<Response>& responses) {
    std::vector<Summary> out;
    for (const Response& r : responses) {
        out.push_back({r.head, r.file_length, r.file.valid(), r.close_after});
    }
    return out;
}

// ---------------------------------------------------------------------------
// HTTP

std::string http_request(std::string_view method, std::string_view target, std::string_view headers,
                         std::string_view version) {
    std::string out;
    out.append(method).append(" ").append(target).append(" ").append(version).append("\r\n");
    out.append(headers).append("\r\n");
    return out;
}

std::string http_post(std::string_view target, std::string_view body,
                      std::string_view extra_headers) {
    std::string headers = "Host: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    headers.append(extra_headers);
    return http_request("POST", target, headers).append(body);
}

std::optional<std::string> HttpReply::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (lower(key) == lower(name)) return value;
    }
    return std::nullopt;
}

std::size_t HttpReply::count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(headers.begin(), headers.end(),
                      [&](const auto& h) { return lower(h.first) == lower(name); }));
}

HttpReply parse_http(const Response& r, bool head_request) {
    INFO("response head: " << r.head);
    HttpReply reply;
    const std::string_view head = r.head;
    const std::size_t end = head.find("\r\n\r\n");
    REQUIRE(end != std::string_view::npos);
    const std::size_t eol = head.find("\r\n");
    reply.status_line = std::string(head.substr(0, eol));

    // "HTTP/1.1 NNN Reason"
    const std::string_view line = reply.status_line;
    REQUIRE(line.starts_with("HTTP/1.1 "));
    REQUIRE(line.size() > 13);
    REQUIRE(std::all_of(line.begin() + 9, line.begin() + 12,
                        [](char c) { return c >= '0' && c <= '9'; }));
    REQUIRE(line[12] == ' ');
    reply.status = std::stoi(std::string(line.substr(9, 3)));

    std::string_view rest =
        head.substr(eol + 2, end + 2 - (eol + 2));  // header lines, each with CRLF
    while (!rest.empty()) {
        const std::size_t next = rest.find("\r\n");
        const std::string_view header_line = rest.substr(0, next);
        rest.remove_prefix(next + 2);
        const std::size_t colon = header_line.find(':');
        REQUIRE(colon != std::string_view::npos);
        REQUIRE(colon > 0);
        std::string_view value = header_line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
            value.remove_suffix(1);
        reply.headers.emplace_back(std::string(header_line.substr(0, colon)), std::string(value));
    }
    reply.body = std::string(head.substr(end + 4));

    if (r.file_length > 0) CHECK(r.file.valid());
    if (reply.status < 200) {
        // An interim response: a bare status line, nothing else.
        CHECK(reply.headers.empty());
        CHECK(reply.body.empty());
        CHECK_FALSE(r.close_after);
        CHECK_FALSE(r.file.valid());
        return reply;
    }
    const std::optional<std::string> connection = reply.header("Connection");
    if (r.close_after) {
        CHECK(connection.has_value());
        CHECK(lower(connection.value_or("")) == "close");
    } else if (connection) {
        CHECK(lower(*connection) == "keep-alive");
    }
    CHECK(reply.count("Content-Length") == 1);
    const std::optional<std::string> length = reply.header("Content-Length");
    REQUIRE(length.has_value());
    if (head_request) {
        CHECK(reply.body.empty());
        CHECK(r.file_length == 0);
    } else {
        CHECK(*length == std::to_string(reply.body.size() + r.file_length));
    }
    return reply;
}

// ---------------------------------------------------------------------------
// Files and bytes

std::string read_whole_file(const std::string& path) {
    Fd file = open_for_reading(path);
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(file.get(), buf, sizeof buf);
        check_sys(n >= 0, "read " + path);
        if (n == 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

void write_whole_file(const std::string& path, std::string_view content) {
    Fd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    check_sys(file.valid(), "create " + path);
    while (!content.empty()) {
        const ssize_t n = ::write(file.get(), content.data(), content.size());
        check_sys(n > 0, "write " + path);
        content.remove_prefix(static_cast<std::size_t>(n));
    }
}

Fd open_for_reading(const std::string& path) {
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    check_sys(file.valid(), "open " + path);
    return file;
}

std::string file_bytes(const Response& r) {
    if (!r.file.valid()) return {};
    std::string out(r.file_length, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(r.file.get(), out.data() + done, out.size() - done,
                                  r.file_offset + static_cast<off_t>(done));
        REQUIRE(n > 0);  // the region must lie inside the file
        done += static_cast<std::size_t>(n);
    }
    return out;
}

std::string wire_bytes(const Response& r) {
    return r.head + file_bytes(r);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::size_t first_difference(std::string_view a, std::string_view b) {
    const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    if (ia == a.end() && ib == b.end()) return std::string_view::npos;
    return static_cast<std::size_t>(ia - a.begin());
}

std::string pseudo_random_bytes(std::size_t n, std::uint32_t seed) {
    std::string out(n, '\0');
    std::uint32_t x = seed | 1u;
    for (char& c : out) {
        x ^= x << 13;  // xorshift32
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x >> 24);
    }
    return out;
}

// ---------------------------------------------------------------------------
// Sockets

SocketPair make_socketpair() {
    int fds[2];
    check_sys(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
    return {Fd(fds[0]), Fd(fds[1])};
}

std::string read_exactly(int fd, std::size_t n) {
    std::string out;
    while (out.size() < n) {
        const std::string got = read_available(fd, n - out.size());
        REQUIRE_FALSE(got.empty());  // EOF before n bytes
        out += got;
    }
    return out;
}

std::string read_available(int fd, std::size_t max) {
    wait_readable(fd);
    std::string out(max, '\0');
    ssize_t n;
    do {
        n = ::recv(fd, out.data(), out.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    REQUIRE(n >= 0);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string read_to_eof(int fd) {
    std::string out;
    for (;;) {
        const std::string got = read_available(fd, 64 * 1024);
        if (got.empty()) return out;
        out += got;
    }
}

bool nothing_pending(int fd) {
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == EAGAIN);  // EOF, or no data yet
}

DefaultSigpipe::DefaultSigpipe() {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGPIPE, &action, &previous_);
}

DefaultSigpipe::~DefaultSigpipe() {
    ::sigaction(SIGPIPE, &previous_, nullptr);
}

FifoWatchdog::FifoWatchdog(std::string fifo_path, std::chrono::milliseconds limit)
    : path_(std::move(fifo_path)) {
    thread_ = std::thread([this, limit] {
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, limit, [this] { return done_; })) return;
        // Still not done: someone is stuck in open(). A writer releases it.
        const int writer = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        fired_ = true;
        if (writer >= 0) ::close(writer);
    });
}

FifoWatchdog::~FifoWatchdog() {
    stop();
}

bool FifoWatchdog::stop() {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
}

CapturedOutput::CapturedOutput(int fd) : fd_(fd) {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    char name[] = "/tmp/iolab-unit-out-XXXXXX";
    file_ = ::mkstemp(name);
    check_sys(file_ >= 0, "mkstemp");
    ::unlink(name);
    saved_ = ::dup(fd_);
    check_sys(saved_ >= 0, "dup");
    check_sys(::dup2(file_, fd_) >= 0, "dup2");
}

CapturedOutput::~CapturedOutput() {
    finish();
}

std::string CapturedOutput::finish() {
    if (saved_ < 0) return {};
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    ::dup2(saved_, fd_);
    ::close(saved_);
    saved_ = -1;
    std::string out;
    char buf[4096];
    ssize_t n;
    ::lseek(file_, 0, SEEK_SET);
    while ((n = ::read(file_, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(file_);
    file_ = -1;
    return out;
}

}  // namespace iolab::test

namespace Catch {

std::string StringMaker<iolab::Io>::convert(iolab::Io io) {
    switch (io) {
        case iolab::Io::ok:
            return "Io::ok";
        case iolab::Io::eof:
            return "Io::eof";
        case iolab::Io::would_block:
            return "Io::would_block";
        case iolab::Io::closed:
            return "Io::closed";
    }
    return "Io::<" + std::to_string(static_cast<int>(io)) + ">";
}

std::string StringMaker<iolab::test::Summary>::convert(const iolab::test::Summary& s) {
    std::string head = s.head.size() > 200 ? s.head.substr(0, 200) + "..." : s.head;
    return "{head " + StringMaker<std::string>::convert(head) + ", file_length " +
           std::to_string(s.file_length) + (s.has_file ? ", file" : ", no file") +
           (s.close_after ? ", close_after}" : "}");
}

}  // namespace Catch
