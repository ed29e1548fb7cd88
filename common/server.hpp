// What every server does around its I/O model: announce where it listens,
// stop cleanly on SIGINT/SIGTERM, and count what it served.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "cli.hpp"

namespace iolab {

// Counters for the one-line summary printed at exit. They live in a shared
// anonymous mapping, so the children of a forking server add to the same
// counts as their parent.
struct Stats {
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bytes_sent{0};
};
Stats& stats();

// SIGINT and SIGTERM request a stop: stop_requested() turns true, and the
// listener given to shut_down_on_stop() is shut down, which wakes a thread
// blocked in accept() (it returns EINVAL) and makes the listener readable for
// an event loop. The handlers are installed without SA_RESTART, so a blocking
// read() is interrupted too. SIGPIPE is ignored: a write to a vanished client
// must fail with EPIPE, not kill the server (sendfile and splice have no
// MSG_NOSIGNAL).
void install_signal_handlers();
void shut_down_on_stop(int listen_fd);  // -1: forget it (a forked child)
bool stop_requested();
// Does from ordinary code what SIGINT/SIGTERM do: stop_requested() turns
// true, and the listener and every socket guarded by a WakeOnStop are shut
// down. For a server that must stop on an error path with threads blocked
// on clients (stage03's pool).
void request_stop();

// While it lives, a stop (SIGINT/SIGTERM) shuts `socket` down, which wakes a
// thread blocked in read() or write() on it: read() returns 0, write() fails.
// Blocking stages guard the client they are serving with one. There is no
// window for a stop to slip through: either the signal handler sees the
// registration, or the constructor sees the stop and shuts the socket down itself.
class WakeOnStop {
public:
    explicit WakeOnStop(int socket);
    ~WakeOnStop();
    WakeOnStop(const WakeOnStop&) = delete;
    WakeOnStop& operator=(const WakeOnStop&) = delete;

private:
    int slot_ = -1;
};

// Prints `listening on HOST:PORT` (the real port) on stdout and flushes it.
void announce_listening(const ServerOptions& options, int listen_fd);

// Prints `<program>: N connections, N requests, N bytes sent` on stdout.
void print_summary(const std::string& program);

}  // namespace iolab
