// Helpers for the per-stage model tests: start a server binary, talk to it
// over loopback with timeouts, and look at it from /proc (mostly with the
// probes of tests/support/proc.hpp).
//
// Every wait here is bounded, so a hung server fails a test instead of
// hanging CTest.
#pragma once

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fd.hpp"
#include "proc.hpp"

namespace model {

using namespace std::chrono_literals;

// The /proc probes of tests/support, which the conformance suites use too.
using conformance::child_pids;
using conformance::cpu_seconds;
using conformance::cpu_used_during;
using conformance::listening_sockets;
using conformance::own_open_fds;
using conformance::thread_count;
using conformance::thread_names;

// A server process started with --port 0; stopped (SIGTERM, then SIGKILL) on destruction.
class ServerProcess {
public:
    ServerProcess(const std::string& binary, std::vector<std::string> args) {
        int out[2];
        if (pipe(out) < 0) throw std::runtime_error("pipe");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork");
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            std::vector<char*> argv{const_cast<char*>(binary.c_str())};
            args.insert(args.begin(), {"--port", "0"});
            for (std::string& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(binary.c_str(), argv.data());
            _exit(127);
        }
        close(out[1]);
        stdout_.reset(out[0]);
        std::string first = read_line(10s);
        auto colon = first.rfind(':');
        if (!first.starts_with("listening on ") || colon == std::string::npos)
            throw std::runtime_error("server did not announce itself: '" + first + "'");
        port_ = static_cast<std::uint16_t>(std::stoi(first.substr(colon + 1)));
    }
    ~ServerProcess() { stop(); }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    pid_t pid() const { return pid_; }
    std::uint16_t port() const { return port_; }

    // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status (-1 if killed).
    int stop(std::chrono::milliseconds grace = 10s) {
        if (pid_ <= 0) return exit_status_;
        kill(pid_, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + grace;
        int status = 0;
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_status_;
    }

    // The next line the server prints on stdout (without the LF), or "" on timeout/EOF.
    std::string read_line(std::chrono::milliseconds timeout) {
        std::string line;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        char c;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{stdout_.get(), POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            if (read(stdout_.get(), &c, 1) != 1) break;
            if (c == '\n') return line;
            line += c;
        }
        return line;
    }

private:
    pid_t pid_ = -1;
    int exit_status_ = -1;
    std::uint16_t port_ = 0;
    iolab::Fd stdout_;
};

// A blocking loopback client socket, invalid if the connection fails. A
// `receive_buffer` (bytes) is set before connect(), while the window the
// handshake announces can still shrink (SO_RCVBUF in socket(7)).
inline iolab::Fd connect_to(std::uint16_t port, int receive_buffer = 0) {
    iolab::Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (receive_buffer > 0)
        setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        return iolab::Fd();
    return s;
}

inline bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Reads until `count` bytes arrived, EOF, or the timeout. Returns what arrived.
inline std::string recv_exactly(int fd, std::size_t count,
                                std::chrono::milliseconds timeout = 10s) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[64 * 1024];
    while (got.size() < count) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        ssize_t n = recv(fd, buffer, std::min(sizeof buffer, count - got.size()), 0);
        if (n <= 0) break;
        got.append(buffer, static_cast<std::size_t>(n));
    }
    return got;
}

// Reads up to and including the first LF (or until timeout/EOF).
inline std::string recv_line(int fd, std::chrono::milliseconds timeout = 10s) {
    std::string got;
    while (!got.ends_with('\n')) {
        std::string c = recv_exactly(fd, 1, timeout);
        if (c.empty()) break;
        got += c;
    }
    return got;
}

// Sends `ECHO text` and checks the reply.
inline bool echo_works(int fd, const std::string& text, std::chrono::milliseconds timeout = 10s) {
    return send_all(fd, "ECHO " + text + "\n") && recv_line(fd, timeout) == text + "\n";
}

// True if the peer closed the connection (EOF or reset) within the timeout.
inline bool closed_by_peer(int fd, std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

// Children of `pid` in the zombie state (Z in /proc/CHILD/stat), and all children.
struct Children {
    int total = 0, zombies = 0;
};
inline Children children_of(pid_t pid) {
    Children result;
    for (pid_t child : child_pids(pid)) {
        ++result.total;
        std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
        std::string line;
        std::getline(stat, line);
        auto close_paren = line.rfind(')');
        if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
            line[close_paren + 2] == 'Z')
            ++result.zombies;
    }
    return result;
}

}  // namespace model

// Added for the stage02-04 model tests.
namespace model {

// Waits until `condition()` is true, checking every 20 ms for at most
// `timeout`. Returns its last value: for things that settle (a child being
// reaped, a descriptor being closed), never for timing a server.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return condition();
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

}  // namespace model

// ---- Helpers added for the multiplexing stages (05-07) ----------------------

namespace model {

// Lowers this process's soft open-file limit for its lifetime: a server
// started meanwhile inherits it (fork + exec), so a test can run a server
// out of descriptors without opening 20,000 sockets. Restores the old limit.
class ScopedFdLimit {
public:
    explicit ScopedFdLimit(rlim_t soft) {
        getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        setrlimit(RLIMIT_NOFILE, &lowered);
    }
    ~ScopedFdLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }
    ScopedFdLimit(const ScopedFdLimit&) = delete;
    ScopedFdLimit& operator=(const ScopedFdLimit&) = delete;

private:
    rlimit saved_{};
};

// Opens up to `count` connections, one after the other; stops at the first
// that fails, so the result may hold fewer.
inline std::vector<iolab::Fd> connect_many(std::uint16_t port, std::size_t count) {
    std::vector<iolab::Fd> clients;
    clients.reserve(count);
    while (clients.size() < count) {
        iolab::Fd client = connect_to(port);
        if (!client) break;
        clients.push_back(std::move(client));
    }
    return clients;
}

// A loopback client whose receive buffer is shrunk to about `bytes` before
// connecting: the server's replies back up after a few kilobytes.
inline iolab::Fd connect_with_small_window(std::uint16_t port, int bytes = 4096) {
    return connect_to(port, bytes);
}

// True if a read on `fd` would not block within `timeout` (data, EOF or an error).
inline bool readable_within(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

// Everything the peer sends until it closes (or the timeout, or `limit` bytes).
inline std::string recv_until_eof(int fd, std::chrono::milliseconds timeout = 20s,
                                  std::size_t limit = std::size_t{1} << 30) {
    return recv_exactly(fd, limit, timeout);
}

// Resident memory of a process in KiB (VmRSS in /proc/PID/status), or -1.
inline long rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    return -1;
}

}  // namespace model
