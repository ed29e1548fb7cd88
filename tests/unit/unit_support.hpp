// Helpers shared by the unit tests: a throwaway document root, running a
// protocol Session over some bytes, taking an HTTP reply apart, and a few
// socket and file utilities.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "docroot.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "protocol.hpp"
#include "temp_tree.hpp"

namespace iolab::test {

// ---------------------------------------------------------------------------
// The document root
// ---------------------------------------------------------------------------

inline constexpr std::string_view kHello = "hello, world\n";  // 13 bytes
inline constexpr std::string_view kIndex = "<!doctype html>\n<title>iolab test root</title>\n";
inline constexpr std::string_view kPage = "<p>a page in sub/</p>\n";
// The content of <base>/secret.txt, which is OUTSIDE the root: no reply may ever carry it.
inline constexpr std::string_view kSecret =
    "TOP-SECRET: this file lives outside the document root\n";
inline constexpr std::string_view kSecretMarker = "TOP-SECRET";

// A fresh document root under /tmp, removed again by the destructor:
//
//   <base>/secret.txt                 outside the root
//   <base>/root/                      the document root (root_path())
//       index.html hello.txt empty.txt style.css app.js data.json image.png
//       "with space.txt"  "pct%41.txt" (a literal percent sign in the name)
//       unreadable.txt    (mode 000)
//       fifo              (a named pipe: opening it for reading would block)
//       sub/page.html sub/notes.txt
//       sub/link_up   -> ../hello.txt     (relative, stays inside)
//       link_in       -> hello.txt        (relative, inside)
//       link_sub      -> sub/page.html    (relative, inside)
//       link_out      -> ../secret.txt    (relative, escapes)
//       link_abs      -> <base>/secret.txt (absolute, outside)
//       link_abs_in   -> <base>/root/hello.txt (absolute, even though inside)
//       link_dir_out  -> ..               (a directory outside)
//       link_root     -> /
//       link_loop     -> link_loop
//
// Used directly or as a Catch fixture: TEST_CASE_METHOD(TempRoot, ...).
class TempRoot {
public:
    TempRoot();
    ~TempRoot();
    TempRoot(const TempRoot&) = delete;
    TempRoot& operator=(const TempRoot&) = delete;

    const std::string& base() const { return base_; }
    const std::string& root_path() const { return root_; }
    const DocRoot& docroot() const { return *docroot_; }

    // Writes a file under the root (`relative` to it) and returns its full path.
    std::string add_file(const std::string& relative, std::string_view content) const;

private:
    testkit::TempTree tree_;  // <base>, removed with everything in it
    std::string base_;
    std::string root_;
    std::optional<DocRoot> docroot_;
};

// ---------------------------------------------------------------------------
// Running a Session
// ---------------------------------------------------------------------------

inline constexpr std::size_t kReadChunk = 64 * 1024;  // what a stage hands over per read()

// Pulls every response the session has ready (fails if it never stops).
std::vector<Response> drain(Session& session);

// Feeds `input` in chunks of at most `chunk` bytes, pulling responses after
// each, like a server does.
std::vector<Response> feed_all(Session& session, std::string_view input,
                               std::size_t chunk = kReadChunk);

// A fresh session fed `input`; with `eof`, the peer then closes its side.
std::vector<Response> run_session(const DocRoot& root, std::string_view input, bool eof = false);

// A fresh session fed `pieces` one after the other (pulling after each), then EOF.
std::vector<Response> run_pieces(const DocRoot& root, const std::vector<std::string_view>& pieces);

// The one response `input` must produce.
Response only_response(const DocRoot& root, std::string_view input);

// What a client can observe of a response, for comparisons.
struct Summary {
    std::string head;
    std::uint64_t file_length = 0;
    bool has_file = false;
    bool close_after = false;
    bool operator==(const Summary&) const = default;
};
std::vector<Summary> summarize(const std::vector<Response>& responses);

// ---------------------------------------------------------------------------
// HTTP requests and replies
// ---------------------------------------------------------------------------

// "METHOD TARGET VERSION\r\n" + header lines (each ending in \r\n) + "\r\n".
std::string http_request(std::string_view method, std::string_view target,
                         std::string_view headers = "Host: test\r\n",
                         std::string_view version = "HTTP/1.1");

// A POST with Host and Content-Length, followed by its body.
std::string http_post(std::string_view target, std::string_view body,
                      std::string_view extra_headers = "");

struct HttpReply {
    int status = 0;
    std::string status_line;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  // the bytes after the blank line inside Response::head

    // The first header of that name (case-insensitive), value trimmed.
    std::optional<std::string> header(std::string_view name) const;
    std::size_t count(std::string_view name) const;
};

// Takes an HTTP response apart and checks what every reply must get right:
// the status line is `HTTP/1.1 <3 digits> <reason>`, the head ends with a
// blank line, `Connection: close` is there exactly when close_after is set,
// and Content-Length frames the body (the tail of head plus the file region;
// for a HEAD request it is the size that a GET would send).
HttpReply parse_http(const Response& r, bool head_request = false);

// ---------------------------------------------------------------------------
// Files, bytes and sockets
// ---------------------------------------------------------------------------

std::string read_whole_file(const std::string& path);
void write_whole_file(const std::string& path, std::string_view content);
Fd open_for_reading(const std::string& path);

// The bytes of the file region `r` names ("" when there is none).
std::string file_bytes(const Response& r);
// What the client receives for `r`: head, then the file region.
std::string wire_bytes(const Response& r);

std::string lower(std::string_view s);
// The index of the first byte where a and b differ (npos when equal), so a
// mismatch in megabytes of data prints as one number instead of the data.
std::size_t first_difference(std::string_view a, std::string_view b);
// Deterministic bytes with no short period, so an offset error shows up.
std::string pseudo_random_bytes(std::size_t n, std::uint32_t seed);

struct SocketPair {
    Fd a;
    Fd b;
};
SocketPair make_socketpair();  // AF_UNIX, SOCK_STREAM, close-on-exec

// Reads exactly n bytes (waiting at most a few seconds for each step).
std::string read_exactly(int fd, std::size_t n);
// Waits until fd is readable, then reads what is there (at most `max` bytes).
std::string read_available(int fd, std::size_t max);
// Reads until EOF.
std::string read_to_eof(int fd);
// True when no data is waiting on fd right now (an EOF is not data).
bool nothing_pending(int fd);

// Sets SIGPIPE to its default action (terminate) while alive, so a test
// proves that the code under test does not raise it (MSG_NOSIGNAL), even if
// whoever started the tests happened to ignore it.
class DefaultSigpipe {
public:
    DefaultSigpipe();
    ~DefaultSigpipe();
    DefaultSigpipe(const DefaultSigpipe&) = delete;
    DefaultSigpipe& operator=(const DefaultSigpipe&) = delete;

private:
    struct sigaction previous_ {};
};

// Guards code that must not block on a FIFO: if it is still inside open()
// after `limit`, the watchdog opens the write end, which releases it, and
// remembers that it had to.
class FifoWatchdog {
public:
    explicit FifoWatchdog(std::string fifo_path,
                          std::chrono::milliseconds limit = std::chrono::seconds(5));
    ~FifoWatchdog();
    FifoWatchdog(const FifoWatchdog&) = delete;
    FifoWatchdog& operator=(const FifoWatchdog&) = delete;

    // Stops the watchdog; true if the guarded code had blocked.
    bool stop();

private:
    std::string path_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool done_ = false;
    std::atomic<bool> fired_{false};
    std::thread thread_;
};

// Redirects a descriptor (1 or 2) into a temporary file while alive.
class CapturedOutput {
public:
    explicit CapturedOutput(int fd);
    ~CapturedOutput();
    CapturedOutput(const CapturedOutput&) = delete;
    CapturedOutput& operator=(const CapturedOutput&) = delete;

    // Restores the descriptor and returns everything written meanwhile.
    std::string finish();

private:
    int fd_;
    int saved_ = -1;
    int file_ = -1;
};

}  // namespace iolab::test

// How Catch prints our types in failure messages.
namespace Catch {
template <>
struct StringMaker<iolab::Io> {
    static std::string convert(iolab::Io io);
};
template <>
struct StringMaker<iolab::test::Summary> {
    static std::string convert(const iolab::test::Summary& s);
};
}  // namespace Catch
