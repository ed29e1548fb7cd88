// Helpers for the per-stage model tests: a server binary started through
// tests/support (ServerProcess, eventually(), TempTree, the /proc probes),
// and plain blocking sockets to talk to it over loopback with timeouts.
//
// Every wait here is bounded, so a hung server fails a test instead of
// hanging CTest.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "fd.hpp"
#include "proc.hpp"
#include "server_process.hpp"
#include "temp_tree.hpp"

namespace model {

using namespace std::chrono_literals;
using namespace testkit;

// ThreadSanitizer runs one thread of its own in every process it watches.
#if defined(__SANITIZE_THREAD__)
inline constexpr int runtime_threads = 1;
#else
inline constexpr int runtime_threads = 0;
#endif

// `args` followed by `more`: a scenario's server arguments plus its own.
inline std::vector<std::string> with(std::vector<std::string> args,
                                     std::initializer_list<std::string> more) {
    args.insert(args.end(), more);
    return args;
}

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

// A deadline shared by the waits of one loop over many clients: each wait
// gets what is left of it, at most `each`. Once one wait has come back
// empty-handed (spend()), the check has failed and the rest are not waited
// for. A server that answers none of 5,000 clients then fails the check in
// seconds, not in 5,000 x 10 s.
class Budget {
public:
    explicit Budget(std::chrono::milliseconds total)
        : end_(std::chrono::steady_clock::now() + total) {}
    std::chrono::milliseconds left(std::chrono::milliseconds each = 10s) const {
        auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(
            end_ - std::chrono::steady_clock::now());
        return std::clamp(rest, std::chrono::milliseconds(0), each);
    }
    void spend() { end_ = std::chrono::steady_clock::now(); }

private:
    std::chrono::steady_clock::time_point end_;
};

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

// Children of `pid` in the zombie state, and all children.
struct Children {
    int total = 0, zombies = 0;
};
inline Children children_of(pid_t pid) {
    Children result;
    for (pid_t child : child_pids(pid)) {
        ++result.total;
        if (process_state(child) == 'Z') ++result.zombies;
    }
    return result;
}

// Lowers one of this process's soft limits (RLIMIT_NOFILE, RLIMIT_SIGPENDING...)
// for its lifetime: a server started meanwhile inherits it (fork + exec),
// so a test can run a server out of descriptors without opening 20,000
// sockets, or out of room for queued signals. Restores the old limit.
class ScopedLimit {
public:
    ScopedLimit(int resource, rlim_t soft) : resource_(resource) {
        getrlimit(resource_, &saved_);
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        setrlimit(resource_, &lowered);
    }
    ~ScopedLimit() { setrlimit(resource_, &saved_); }
    ScopedLimit(const ScopedLimit&) = delete;
    ScopedLimit& operator=(const ScopedLimit&) = delete;

private:
    int resource_;
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

}  // namespace model
