// The server under test, as a child process: started with `--port 0` and
// found through its `listening on HOST:PORT` line; stopped with SIGTERM when
// a test asks (stop()), and always killed and reaped when this object goes
// away, whatever the test did. Every suite starts its servers with it.
//
// Or a server someone else started (attach(), the suites' --connect): then
// there is no process here, only an address. connect() works; whatever needs
// the process (its pid, signals, its stdout and stderr) throws TestError, so
// a check that forgot to skip itself under --connect fails instead of passing.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client.hpp"
#include "fd.hpp"

namespace testkit {

// How to start the server, beyond its command line.
struct LaunchOptions {
    // NAME=VALUE entries added to the server's environment (replacing a
    // variable of the same name), e.g. LD_PRELOAD=... to inject faults.
    std::vector<std::string> environment;
    // The server's RLIMIT_NOFILE soft limit, set in the child just before
    // exec (0: inherit ours). A server run out of descriptors this way needs
    // no test opening thousands of sockets.
    rlim_t max_open_files = 0;
    // Where the server's stderr goes, for stderr_text() to read back; empty:
    // our own stderr, so what the server says shows in the test's output.
    std::string stderr_path;
};

class ServerProcess {
public:
    // Starts `binary --port 0 ARGS...` with stdout on a pipe, and waits for
    // its `listening on` line. Throws TestError if it exits or stays silent instead.
    ServerProcess(const std::string& binary, const std::vector<std::string>& args,
                  const LaunchOptions& launch = {});
    // A server already running at host:port, not ours to start or stop.
    static ServerProcess attach(const std::string& host, std::uint16_t port);
    ~ServerProcess();  // SIGKILL to its process group, then reap
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    // False for a server attached with attach(): no process to look at.
    bool has_process() const { return pid_ > 0; }

    Connection connect(int receive_buffer = 0) const {
        return Connection(host_, port_, receive_buffer);
    }
    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    pid_t pid() const;

    void send_signal(int signal) const;

    // The wait status once the process has exited (waiting at most `wait`),
    // or nothing if it is still running.
    std::optional<int> wait_for_exit(std::chrono::milliseconds wait);
    bool running() { return !wait_for_exit(std::chrono::milliseconds(0)); }

    // SIGTERM, then up to `grace` for the server to exit, then SIGKILL.
    // Returns its exit status, or -1 if it did not exit by itself.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

    // The next line the server writes on stdout (without the LF), or "" if
    // none comes within `timeout` (or stdout ends): the summary after stop().
    std::string read_line(std::chrono::milliseconds timeout);
    // What the server wrote to stdout after its `listening on` line and is in
    // the pipe now. Call after the process exited to get its summary line.
    std::string stdout_so_far();
    // Everything the server wrote to stderr so far (LaunchOptions::stderr_path).
    std::string stderr_text() const;

private:
    struct Attached {};  // a tag, so `ServerProcess(binary, {})` stays unambiguous
    ServerProcess(Attached, std::string host, std::uint16_t port)
        : host_(std::move(host)), port_(port) {}
    void need_process(const char* what) const;
    void read_listening_line();
    void kill_and_reap();

    pid_t pid_ = -1;
    std::optional<int> wait_status_;
    iolab::Fd stdout_;
    std::string stdout_buffer_;  // read from stdout_, not yet handed out
    std::string stderr_path_;
    std::string host_;
    std::uint16_t port_ = 0;
};

// The server a suite's command line names (tests/support/suite_main.hpp):
// --server PATH, and --server-arg=X and --server-env=NAME=VALUE, repeated;
// or --connect HOST:PORT with --root DIR, a server already running on DIR.
// Plus what the server speaks, whichever way it is reached (--http-only,
// --no-echo): the suites skip the test cases it cannot pass, visibly.
struct ServerUnderTest {
    std::string server;
    std::vector<std::string> server_args;
    std::vector<std::string> server_env;

    std::string connect;       // HOST:PORT of a running server, or empty
    std::string connect_root;  // --root DIR with --connect: the directory it serves
    std::string prepare_root;  // --prepare-root DIR: write the test files there, then exit
    bool http_only = false;    // no line protocol (ECHO, GET path lines): HTTP only
    bool no_echo = false;      // no POST /echo

    bool connected() const { return !connect.empty(); }

    // Starts it with `--root ROOT` and the run's arguments and environment
    // (then `extra`'s), its stderr in a new file in directory `scratch`.
    // With --connect: attaches to the running server instead (ROOT, `extra`
    // and the launch flags do not apply; the suite skips what needs them).
    ServerProcess start(const std::string& root, const std::string& scratch,
                        LaunchOptions extra = {}) const;
};

// "HOST:PORT" or "[V6]:PORT" as host and port; throws TestError if malformed.
std::pair<std::string, std::uint16_t> parse_host_port(const std::string& text);

// What a suite's command line says: the server, and what the suite expects
// of its model (the suite's own flags, e.g. --serial).
template <typename Expectations>
struct SuiteOptions : ServerUnderTest {
    Expectations expect;
};

// "exited with status 0", "killed by signal 11 (Segmentation fault)".
std::string describe_wait_status(int status);

// The first line of `text` that is a sanitizer report (AddressSanitizer,
// LeakSanitizer, UndefinedBehaviorSanitizer's "runtime error:", ThreadSanitizer),
// with what follows it; empty when there is none.
std::string sanitizer_report(const std::string& text);

}  // namespace testkit
