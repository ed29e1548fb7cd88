// Worker: one thread, one epoll loop, a share of the connections.
//
// A load generator must be cheaper than what it measures, so it is built
// like stage07: nonblocking sockets, one epoll instance per thread, no
// thread per connection. An idle connection costs a descriptor and a few
// bytes here and nothing per loop iteration, which is what lets the run hold
// ten thousand of them open against a select() server.
//
// A run has three steps, with every worker waiting for the others in
// between: open the idle connections, open the active ones, then load.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "fd.hpp"
#include "stats.hpp"
#include "workload.hpp"

namespace iolab::loadgen {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Nanos = std::chrono::nanoseconds;

struct Target {
    sockaddr_storage address{};
    socklen_t length = 0;
    std::string name;  // "host:port", for messages
};

// What every worker is told. The same for all of them and read-only during the run.
struct RunPlan {
    Target target;
    // Local addresses to connect from, in turn (--source); empty: the
    // kernel's choice. Each has its own ephemeral ports.
    std::vector<Target> sources;
    const Workload* workload = nullptr;
    int conns = 0;                  // active connections across all workers (they share the rate)
    int pipeline = 1;               // requests in flight per connection
    Nanos think{0};                 // closed loop: pause between a reply and the next request
    double rate = 0;                // requests/s across all connections; 0 means closed loop
    Nanos warmup{0};                // load that is not measured
    std::optional<Nanos> duration;  // measured time, when the run is timed
    std::optional<std::uint64_t> requests;  // requests to send, when the run is counted
    Nanos timeout{0};                       // longest wait for a connect or a reply
    int max_retries = 10;     // failures in a row after which a connection is given up
    TimePoint hard_deadline;  // nothing runs past this, whatever the server does
};

// Sets the start of the load: run by the barrier once every worker has arrived.
struct MarkStart {
    TimePoint* start;
    void operator()() noexcept { *start = Clock::now(); }
};

// What the workers share while they run.
struct SharedRun {
    explicit SharedRun(int workers) : sync(workers, MarkStart{&load_start}) {}

    // --requests: takes the right to send one more measured request. Never
    // drives the count below zero, so tickets handed back are not lost.
    bool take_ticket() noexcept {
        std::int64_t left = tickets.load(std::memory_order_relaxed);
        while (left > 0)
            if (tickets.compare_exchange_weak(left, left - 1, std::memory_order_relaxed))
                return true;
        return false;
    }
    // Hands back tickets of requests that were never answered, and not for an
    // error either (the server announced it was closing).
    void return_tickets(std::int64_t count) noexcept {
        tickets.fetch_add(count, std::memory_order_relaxed);
    }
    bool tickets_left() const noexcept { return tickets.load(std::memory_order_relaxed) > 0; }

    TimePoint load_start;                  // written by the barrier, read after it
    std::barrier<MarkStart> sync;          // between the steps of the run
    std::atomic<std::int64_t> tickets{0};  // --requests: how many may still be sent
};

// Asks every worker to end its run early (SIGINT, or another worker failed).
// Async-signal-safe.
void request_stop() noexcept;
bool stop_requested() noexcept;

class Worker {
public:
    // `active_indices` are the global numbers (0..conns-1) of this worker's
    // active connections: they set each one's place in the rate schedule.
    // Its idle connections are numbered first_idle, first_idle + 1, ...
    Worker(const RunPlan& plan, SharedRun& shared, const std::vector<int>& active_indices,
           int first_idle, int idle_count);

    // The thread body. Never throws: an unexpected failure is kept for
    // failure(), stops the whole run and lets the other workers go on to
    // report.
    void run() noexcept;

    std::exception_ptr failure() const { return failure_; }
    const Stats& stats() const { return stats_; }
    TimePoint load_end() const { return load_end_; }
    bool cut_short() const { return cut_short_; }

private:
    enum class LinkState {
        queued,      // waiting for its turn to connect
        retrying,    // failed; waiting out the backoff before reconnecting
        connecting,  // connect() in progress
        open,
        dead,  // failed too many times in a row: given up
    };

    // One connection slot. The socket changes on every reconnect.
    struct Link {
        Fd socket;
        LinkState state = LinkState::queued;
        TimePoint since{};     // when the current connect() began
        TimePoint retry_at{};  // retrying: when to reconnect
        int failures = 0;      // in a row
        int attempts = 0;
    };

    // One request sent and not yet answered.
    struct InFlight {
        TimePoint intended;  // when it should have been sent: latency is counted from here
        TimePoint sent;      // when it was queued for writing: the reply timeout runs from here
        std::uint64_t key;
        bool measured;  // sent in the measured window (and holding a --requests ticket)
    };

    struct ActiveConn {
        explicit ActiveConn(const Workload& workload, int index)
            : global_index(index), checker(workload) {}

        Link link;
        int global_index;
        std::string out;  // request bytes not yet accepted by the kernel
        std::size_t out_sent = 0;
        bool want_write = false;  // EPOLLOUT is registered
        std::deque<InFlight> in_flight;
        std::deque<TimePoint> free_slots;  // closed loop: when each free pipeline slot may send
        TimePoint next_send{};             // fixed rate: the next request's intended time
        std::uint64_t next_key = 0;
        ReplyChecker checker;
        TimePoint timer_at = TimePoint::max();  // the earliest wake-up armed for it
    };

    struct Timer {
        TimePoint at;
        std::uint64_t tag;
        bool operator>(const Timer& other) const { return at > other.at; }
    };

    // Connections are named by a tag, kept in epoll's data and in timers:
    // their index, and whether they are idle or active.
    static std::uint64_t tag_of(bool idle, std::size_t index) {
        return index << 1 | (idle ? 1 : 0);
    }
    static bool is_idle(std::uint64_t tag) { return (tag & 1) != 0; }
    static std::size_t index_of(std::uint64_t tag) { return static_cast<std::size_t>(tag >> 1); }
    Link& link_of(std::uint64_t tag);

    void run_steps();
    void wait_for_other_workers();
    void loop_until(const std::function<bool(TimePoint)>& done);
    void wait_and_dispatch(TimePoint now, TimePoint wake);
    bool all_settled(bool idle) const;
    bool load_finished(TimePoint now) const;
    void start_load(TimePoint start);
    void finish(TimePoint now);

    // Connections.
    void queue_connect(std::uint64_t tag);
    void pump_connects(TimePoint now);
    void start_connect(std::uint64_t tag, TimePoint now);
    void on_connect_ready(std::uint64_t tag, TimePoint now);
    void on_connected(std::uint64_t tag, TimePoint now);
    void fail(std::uint64_t tag, ErrorKind kind, const std::string& detail);
    void close_link(std::uint64_t tag);
    void watch(std::uint64_t tag, int fd, std::uint32_t events, bool add);
    std::string describe(std::uint64_t tag) const;
    void sweep(TimePoint now);

    // Events.
    void dispatch(std::uint64_t tag, std::uint32_t events);
    void on_idle_event(std::size_t index);
    bool on_readable(std::size_t index);
    bool feed(std::size_t index, std::string_view data, TimePoint now);
    void complete_request(ActiveConn& conn, const ReplyStep& step, TimePoint now);
    void on_server_close(std::size_t index);
    void try_send(std::size_t index, TimePoint now);
    bool flush(std::size_t index);
    void set_write_interest(ActiveConn& conn, bool want);

    // Timers.
    void arm_timer(std::uint64_t tag, TimePoint at);
    void fire_timers(TimePoint now);

    const RunPlan& plan_;
    SharedRun& shared_;
    int first_idle_;
    Fd epoll_;
    std::vector<Link> idle_;
    std::vector<ActiveConn> active_;
    std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
    std::deque<std::uint64_t> connect_queue_;
    int pending_connects_ = 0;
    std::vector<char> read_buffer_;
    int barriers_passed_ = 0;

    bool load_running_ = false;
    TimePoint measure_start_ = TimePoint::max();
    TimePoint end_time_ = TimePoint::max();  // end of the measured window (--duration)
    Nanos interval_{0};                      // fixed rate: between two requests of one connection
    TimePoint next_sweep_{};
    std::size_t live_active_ = 0;  // active connections not given up
    std::uint64_t measured_in_flight_ = 0;

    Stats stats_;
    TimePoint load_end_{};
    bool cut_short_ = false;
    std::exception_ptr failure_;
};

}  // namespace iolab::loadgen
