// The adversarial suite: what every server must survive (docs/protocol.md,
// "What no client can do": bad input gets a clear error reply and never
// crashes, hangs or leaks a server). Each test case starts a server of its
// own, attacks it, measures it from /proc (memory, descriptors, CPU,
// CLOSE_WAIT sockets), and ends by checking it is still alive, still
// answering, and stops cleanly on SIGTERM with no sanitizer report: a crash,
// a SIGPIPE death or a leak anywhere in the case fails that case.
//
// The client, the server process and the /proc probes are tests/support's,
// as in the conformance suite: this suite is part of the same contract, in a
// program of its own because its cases are heavier and need their own files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client.hpp"
#include "eventually.hpp"
#include "not_checked.hpp"
#include "proc.hpp"
#include "server_process.hpp"
#include "temp_tree.hpp"

namespace adversarial {

using namespace testkit;  // the client, the server process, the /proc probes

// What a server's I/O model lets it do. The defaults are the full contract
// of docs/protocol.md; a model that legitimately differs says so with a flag
// (passed by iolab_conformance() in cmake/iolab.cmake), and the cases read
// the fields.
//
// To add one: a field here, its flag in main.cpp, and the cases that read it.
struct Expectations {
    // One client at a time: the next waits in the backlog until the current
    // one leaves (stage01). Flag: --serial.
    bool serial = false;
    // Blocking I/O with a thread or a process per client, or one client at
    // a time (stages 01-03). A newcomer may wait in the kernel's backlog or in
    // a queue for a worker, unanswered, instead of being answered or refused
    // at once as an event loop does. Flag: --blocking.
    bool blocking = false;
    // The model busy-polls: it burns a core even when idle (stage04), so
    // "it does not spin" cannot be checked. Flag: --busy-polls.
    bool busy_polls = false;
    // Every symlink is refused, even one to a file inside the root (nginx's
    // `disable_symlinks on`): the swapped symlink is never served, so only
    // "nothing leaks" is checked of it. Flag: --no-symlinks.
    bool no_symlinks = false;
};

using SuiteOptions = testkit::SuiteOptions<Expectations>;
SuiteOptions& options();
inline const Expectations& expect() {
    return options().expect;
}

// The document root, made once per run in a fresh temporary directory (with
// --connect: the tree --prepare-root wrote, BASE/root being --root):
//
//   BASE/secret.txt            outside the root: its content must never be served
//   BASE/root/                 the root given to the server, holding:
//     hello.txt index.html
//     body16.bin, body64.bin   16 MiB and 64 MiB, sparse (zeros, no disk used)
//     huge.bin                 2 GiB + a bit, sparse, with markers (see huge_marker)
//     %41.txt, A.txt           to tell a name decoded once from one decoded twice
//     subdir/inner.txt         a directory (refused as a path, no listing)
//     fifo, socket             a FIFO and a UNIX socket (refused without blocking)
//     escape_relative -> ../secret.txt   symlinks out of the root (refused)
//     escape_absolute -> BASE/secret.txt
//     escape_directory -> BASE           (then escape_directory/secret.txt)
//     escape_device -> /dev/zero
//     swap -> hello.txt        flipped to ../secret.txt and back by a test case
struct DocumentRoot {
    TempTree tree{"adversarial", true};  // BASE, on a tmpfs if there is one
    std::string base;
    std::string root;
    std::string hello_txt, index_html;
    std::string percent_41_txt, a_txt;  // the contents of %41.txt and A.txt
    std::string secret;                 // the content of BASE/secret.txt: a unique marker
};
const DocumentRoot& document_root();
void remove_document_root();
// --prepare-root DIR: writes the tree as BASE = DIR, for a server started
// on DIR/root and tested with --connect.
void prepare_root(const std::string& dir);

inline constexpr std::size_t body16_size = std::size_t{16} << 20;
inline constexpr std::size_t body64_size = std::size_t{64} << 20;
// Past 2^31, where a 32-bit signed offset or length would wrap.
inline constexpr std::uint64_t huge_size = (std::uint64_t{2} << 30) + 65536 + 123;
// The offsets of huge.bin's 16-byte markers, each one saying where it is.
std::vector<std::uint64_t> huge_marker_offsets();
std::string huge_marker(std::uint64_t offset);

// A server of the test case's own, started with --port 0, the document root,
// and the run's --server-arg/--server-env (plus `extra`, e.g. a descriptor
// limit). Killed on destruction; a test case that gets to its end calls
// check_alive_then_stop() instead.
class Server {
public:
    explicit Server(LaunchOptions extra = {});
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    Connection connect(int receive_buffer = 0) const;
    // False with --connect: no process, so no /proc measurements.
    bool measurable() const { return process_.has_process(); }
    pid_t pid() const { return process_.pid(); }
    std::uint16_t port() const { return process_.port(); }

    // The server is still running, has printed no sanitizer report, answers
    // a new client's ECHO, and exits 0 on SIGTERM (with --connect: answers,
    // by HTTP with --http-only). A serial server answers
    // only once every other connection of the test case is closed. With
    // faults injected into accept(), the probe may be refused (ERR 503 busy)
    // and tried again, up to `busy_retries` times.
    void check_alive_then_stop(int busy_retries = 0);

private:
    ServerProcess process_;
};

// A request whose reply is known, answered right on `c`: ECHO WORD, or
// with --http-only GET /hello.txt.
bool answers(Connection& c, const std::string& word);

// One send() of `bytes` on another thread, so that the test can read the
// replies while the request is still going out: the way a pipelining client
// avoids the deadlock where both sides wait for the other to read. With
// `until_closed`, the server closing or resetting the connection ends the
// send quietly (for requests it is expected to cut short).
class BackgroundSend {
public:
    BackgroundSend(Connection& c, std::string bytes, bool until_closed = false);
    ~BackgroundSend();
    BackgroundSend(const BackgroundSend&) = delete;
    BackgroundSend& operator=(const BackgroundSend&) = delete;
    // Waits for the send to end; rethrows its error. Returns the bytes sent.
    std::size_t wait();

private:
    std::string bytes_;
    std::size_t sent_ = 0;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace adversarial
