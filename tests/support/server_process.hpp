// The server under test, as a child process: started with `--port 0 --root
// DIR`, found through its `listening on HOST:PORT` line, and always killed
// and reaped when this object goes away, whatever the test did.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client.hpp"
#include "fd.hpp"

namespace conformance {

// How to start the server, beyond its command line.
struct LaunchOptions {
    // NAME=VALUE entries added to the server's environment (replacing a
    // variable of the same name), e.g. LD_PRELOAD=... to inject faults.
    std::vector<std::string> environment;
    // The server's RLIMIT_NOFILE soft limit, set in the child just before
    // exec (0: inherit ours). A server run out of descriptors this way needs
    // no test opening thousands of sockets.
    rlim_t max_open_files = 0;
};

class ServerProcess {
public:
    // Starts `binary --port 0 --root ROOT ARGS...` with stdout on a pipe and
    // stderr in `stderr_path`, and waits for its `listening on` line.
    // Throws ConformanceError if it exits or stays silent instead.
    ServerProcess(const std::string& binary, const std::string& root,
                  const std::vector<std::string>& args, std::string stderr_path,
                  const LaunchOptions& launch = {});
    ~ServerProcess();  // SIGKILL to its process group, then reap
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    Connection connect() const { return Connection(host_, port_); }
    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }

    void send_signal(int signal) const;

    // The wait status once the process has exited (waiting at most `wait`),
    // or nothing if it is still running.
    std::optional<int> wait_for_exit(std::chrono::milliseconds wait);
    bool running() { return !wait_for_exit(std::chrono::milliseconds(0)); }

    // What the server wrote to stdout after its `listening on` line and is in
    // the pipe now. Call after the process exited to get its summary line.
    std::string stdout_so_far();
    // Everything the server wrote to stderr so far.
    std::string stderr_text() const;

private:
    void read_listening_line();
    void kill_and_reap();

    pid_t pid_ = -1;
    std::optional<int> wait_status_;
    iolab::Fd stdout_;
    std::string stdout_buffer_;
    std::string stderr_path_;
    std::string host_;
    std::uint16_t port_ = 0;
};

// "exited with status 0", "killed by signal 11 (Segmentation fault)".
std::string describe_wait_status(int status);

// The first line of `text` that is a sanitizer report (AddressSanitizer,
// LeakSanitizer, UndefinedBehaviorSanitizer's "runtime error:", ThreadSanitizer),
// with what follows it; empty when there is none.
std::string sanitizer_report(const std::string& text);

}  // namespace conformance
