// How a server stops: SIGINT or SIGTERM, seen by every thread and every
// blocked call. Below the socket helpers (net.hpp), which give up their
// EINTR retries once a stop is requested.
#pragma once

namespace iolab {

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

}  // namespace iolab
