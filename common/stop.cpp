#include "stop.hpp"

#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "counters.hpp"

namespace iolab {

namespace {

// Set by the handler, read by every thread (stage03's workers too): a
// lock-free atomic is both async-signal-safe and free of data races, where a
// volatile sig_atomic_t is only the former.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);
// The listener to shut down on a stop. An atomic int is lock-free, so the
// handler may read it (a mutex would not be async-signal-safe).
std::atomic<int> g_listener{-1};
static_assert(std::atomic<int>::is_always_lock_free);

// Sockets that blocked threads are serving (WakeOnStop), -1 in a free slot.
constexpr int wake_slots = 1024;
std::atomic<int> g_wake[wake_slots];

void on_stop_signal(int) {
    int saved_errno = errno;
    g_stop.store(true);
    // shutdown(2) is async-signal-safe. On a listening socket it makes a
    // blocked accept() return EINVAL at once, and every later one too, so
    // there is no window where the stop is missed. On a connected socket it
    // wakes a blocked read() (which returns 0) or write().
    if (int fd = g_listener.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    for (std::atomic<int>& slot : g_wake)
        if (int fd = slot.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    errno = saved_errno;
}

}  // namespace

void install_signal_handlers() {
    stats();  // map the counters before any fork
    for (std::atomic<int>& slot : g_wake)
        slot.store(-1);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and see the stop
    if (::sigaction(SIGINT, &action, nullptr) < 0 || ::sigaction(SIGTERM, &action, nullptr) < 0)
        throw std::system_error(errno, std::system_category(), "sigaction");
    ::signal(SIGPIPE, SIG_IGN);
}

void shut_down_on_stop(int listen_fd) {
    g_listener.store(listen_fd);
}

bool stop_requested() {
    return g_stop.load();
}

void request_stop() {
    on_stop_signal(SIGTERM);
}

WakeOnStop::WakeOnStop(int socket) {
    for (int i = 0; i < wake_slots && slot_ < 0; ++i) {
        int free = -1;
        if (g_wake[i].compare_exchange_strong(free, socket)) slot_ = i;
    }
    // Registered first, checked second (both sequentially consistent): a
    // handler that ran before the registration had already set g_stop.
    if (stop_requested()) ::shutdown(socket, SHUT_RDWR);
}

WakeOnStop::~WakeOnStop() {
    if (slot_ >= 0) g_wake[slot_].store(-1);
}

}  // namespace iolab
