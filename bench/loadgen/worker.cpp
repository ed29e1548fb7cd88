#include "worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <system_error>
#include <utility>

namespace iolab::loadgen {

namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_stop{false};

// Connects in progress per worker. Starting thousands at once would overflow
// the server's accept queue: the kernel then drops SYNs, the client retries
// a second later, and a fast server would look slow to connect to.
constexpr int kMaxPendingConnects = 128;

// How often connect and reply timeouts are checked: a scan of this worker's
// connections, cheap next to 100 ms even at ten thousand.
constexpr Nanos kSweepInterval = 100ms;

// Shared by all of a worker's connections (a reply is checked as it is read,
// never stored), so an idle connection costs no buffer at all.
constexpr std::size_t kReadBufferSize = 256 * 1024;

constexpr int kMaxEvents = 512;

// What an open connection waits for. EPOLLRDHUP reports the server's close
// even while we have nothing to read.
constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

std::string error_text(int error) {
    return std::generic_category().message(error);
}

// The wait before reconnecting after `failures` failures in a row: 1 ms,
// doubling, at most 1 s. Quick enough that one reset costs a run little,
// slow enough that a dead server is not hammered.
Nanos backoff(int failures) {
    const Nanos wait = 1ms * (1 << std::min(failures - 1, 10));
    return std::min<Nanos>(wait, 1s);
}

// What an event on an idle connection meant, from recv()'s result: the
// server closed it, reset it, or sent it something (ERR 503 busy, mostly).
std::string idle_failure(ssize_t got, const char* bytes, int error) {
    if (got > 0) return "server sent \"" + excerpt({bytes, static_cast<std::size_t>(got)}) + "\"";
    if (got == 0) return "closed by the server";
    return error_text(error);
}

std::string milliseconds(Nanos duration) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
           " ms";
}

}  // namespace

void request_stop() noexcept {
    g_stop.store(true, std::memory_order_relaxed);
}
bool stop_requested() noexcept {
    return g_stop.load(std::memory_order_relaxed);
}

Worker::Worker(const RunPlan& plan, SharedRun& shared, const std::vector<int>& active_indices,
               int first_idle, int idle_count)
    : plan_(plan),
      shared_(shared),
      first_idle_(first_idle),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      idle_(static_cast<std::size_t>(idle_count)),
      read_buffer_(kReadBufferSize) {
    if (!epoll_) throw_errno("epoll_create1");
    active_.reserve(active_indices.size());
    for (int index : active_indices)
        active_.emplace_back(*plan_.workload, index);
    live_active_ = active_.size();
}

Worker::Link& Worker::link_of(std::uint64_t tag) {
    return is_idle(tag) ? idle_[index_of(tag)] : active_[index_of(tag)].link;
}

std::string Worker::describe(std::uint64_t tag) const {
    if (is_idle(tag)) return "idle connection " + std::to_string(first_idle_ + index_of(tag));
    return "connection " + std::to_string(active_[index_of(tag)].global_index);
}

// ---------------------------------------------------------------------------
// The run

void Worker::run() noexcept {
    try {
        run_steps();
    } catch (...) {
        failure_ = std::current_exception();
        request_stop();
        // Leave the barrier, so the other workers do not wait for this one forever.
        if (barriers_passed_ < 2) shared_.sync.arrive_and_drop();
    }
}

void Worker::run_steps() {
    next_sweep_ = Clock::now() + kSweepInterval;

    // Idle connections first, so the active ones meet a server already
    // carrying them (what select() and poll() pay for on every call).
    for (std::size_t i = 0; i < idle_.size(); ++i)
        queue_connect(tag_of(true, i));
    loop_until([this](TimePoint) { return all_settled(true); });
    wait_for_other_workers();

    for (std::size_t i = 0; i < active_.size(); ++i)
        queue_connect(tag_of(false, i));
    loop_until([this](TimePoint) { return all_settled(false); });
    wait_for_other_workers();  // the last one to arrive marks the start

    start_load(shared_.load_start);
    loop_until([this](TimePoint now) { return load_finished(now); });
    finish(Clock::now());
}

void Worker::wait_for_other_workers() {
    shared_.sync.arrive_and_wait();
    ++barriers_passed_;
}

void Worker::loop_until(const std::function<bool(TimePoint)>& done) {
    for (;;) {
        const TimePoint now = Clock::now();
        fire_timers(now);
        if (now >= next_sweep_) {
            sweep(now);
            next_sweep_ = now + kSweepInterval;
        }
        pump_connects(now);
        if (done(now)) return;
        if (now >= plan_.hard_deadline || stop_requested()) {
            cut_short_ = true;
            return;
        }
        TimePoint wake = std::min({next_sweep_, plan_.hard_deadline, end_time_});
        if (!timers_.empty()) wake = std::min(wake, timers_.top().at);
        wait_and_dispatch(now, wake);
    }
}

void Worker::wait_and_dispatch(TimePoint now, TimePoint wake) {
    // epoll_pwait2 takes a timespec: a rate of thousands of requests per
    // second per connection needs better than epoll_wait's milliseconds.
    const Nanos wait = std::max(Nanos{0}, wake - now);
    const timespec timeout{.tv_sec = static_cast<time_t>(wait / 1s),
                           .tv_nsec = static_cast<long>((wait % 1s).count())};
    std::array<epoll_event, kMaxEvents> events;
    const int ready = ::epoll_pwait2(epoll_.get(), events.data(), kMaxEvents, &timeout, nullptr);
    if (ready < 0) {
        if (errno == EINTR) return;  // a signal (SIGINT): the loop looks at the stop flag
        throw_errno("epoll_pwait2");
    }
    for (int i = 0; i < ready; ++i)
        dispatch(events[i].data.u64, events[i].events);
}

bool Worker::all_settled(bool idle) const {
    const auto settled = [](const Link& link) {
        return link.state == LinkState::open || link.state == LinkState::dead;
    };
    if (idle) return std::all_of(idle_.begin(), idle_.end(), settled);
    return std::all_of(active_.begin(), active_.end(),
                       [&settled](const ActiveConn& conn) { return settled(conn.link); });
}

bool Worker::load_finished(TimePoint now) const {
    if (plan_.duration && now >= end_time_) return true;
    if (plan_.requests && !shared_.tickets_left() && measured_in_flight_ == 0) return true;
    return !active_.empty() && live_active_ == 0;  // every connection given up
}

void Worker::start_load(TimePoint start) {
    load_running_ = true;
    measure_start_ = start + plan_.warmup;
    if (plan_.duration) end_time_ = measure_start_ + *plan_.duration;
    const bool closed_loop = plan_.rate <= 0;
    if (!closed_loop) interval_ = Nanos(std::llround(1e9 * plan_.conns / plan_.rate));

    for (std::size_t i = 0; i < active_.size(); ++i) {
        ActiveConn& conn = active_[i];
        // Spread the connections' first requests over one think time (or one
        // rate interval), so they do not all fire in the same instant.
        const double share = static_cast<double>(conn.global_index) / plan_.conns;
        if (closed_loop) {
            const Nanos stagger(std::llround(share * static_cast<double>(plan_.think.count())));
            conn.free_slots.assign(static_cast<std::size_t>(plan_.pipeline), start + stagger);
        } else {
            conn.next_send =
                start + Nanos(std::llround(share * static_cast<double>(interval_.count())));
        }
        try_send(i, Clock::now());
    }
}

void Worker::finish(TimePoint now) {
    load_end_ = std::min(now, end_time_);
    load_running_ = false;

    if (cut_short_ && !stop_requested()) {
        // The time limit struck: whatever is still unanswered never will be.
        for (std::size_t i = 0; i < active_.size(); ++i)
            if (!active_[i].in_flight.empty())
                stats_.add_error(ErrorKind::timeout,
                                 describe(tag_of(false, i)) + ": no reply before the time limit");
    } else if (!cut_short_) {
        sweep(now);  // replies overdue at the very end are timeouts like any other
    }

    // The idle connections must have survived the whole run. One that the
    // server closed since the last event, or sent something to, shows here.
    for (std::size_t i = 0; i < idle_.size(); ++i) {
        Link& link = idle_[i];
        if (link.state != LinkState::open) continue;
        std::array<char, 64> peeked;
        const ssize_t got =
            ::recv(link.socket.get(), peeked.data(), peeked.size(), MSG_PEEK | MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ++stats_.idle_open_at_end;
            continue;
        }
        const std::string what = idle_failure(got, peeked.data(), errno);
        stats_.add_error(ErrorKind::idle_closed,
                         describe(tag_of(true, i)) + ": " + what + " (found at the end)");
    }
}

// ---------------------------------------------------------------------------
// Connections

void Worker::queue_connect(std::uint64_t tag) {
    link_of(tag).state = LinkState::queued;
    connect_queue_.push_back(tag);
}

void Worker::pump_connects(TimePoint now) {
    while (pending_connects_ < kMaxPendingConnects && !connect_queue_.empty()) {
        const std::uint64_t tag = connect_queue_.front();
        connect_queue_.pop_front();
        if (link_of(tag).state == LinkState::queued) start_connect(tag, now);
    }
}

void Worker::start_connect(std::uint64_t tag, TimePoint now) {
    Link& link = link_of(tag);
    if (link.attempts++ > 0) ++stats_.reconnects;

    const sockaddr_storage& address = plan_.target.address;
    Fd socket(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket) {
        // Out of descriptors or buffers: this connection fails, the run goes on.
        const int error = errno;
        if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
            fail(tag, ErrorKind::connect, "socket(): " + error_text(error));
            return;
        }
        throw_errno("socket");
    }
    if (!is_idle(tag)) {
        // Our requests leave as soon as they are written: the harness adds no
        // Nagle delay of its own. This does not hide a server's Nagle stall,
        // which comes from the server's writes meeting our delayed ACKs.
        const int on = 1;
        if (::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
            throw_errno("setsockopt(TCP_NODELAY)");
    }

    if (!plan_.sources.empty()) {
        // Spread over the source addresses by connection number. The port
        // is left to connect() (IP_BIND_ADDRESS_NO_PORT): bind() alone
        // would reserve one for the address whatever the destination.
        const std::size_t number =
            is_idle(tag) ? static_cast<std::size_t>(first_idle_) + index_of(tag)
                         : static_cast<std::size_t>(active_[index_of(tag)].global_index);
        const Target& source = plan_.sources[number % plan_.sources.size()];
        const int on = 1;
        if (::setsockopt(socket.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on) != 0)
            throw_errno("setsockopt(IP_BIND_ADDRESS_NO_PORT)");
        if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&source.address),
                   source.length) != 0) {
            fail(tag, ErrorKind::connect, "bind to " + source.name + ": " + error_text(errno));
            return;
        }
    }

    const auto* peer = reinterpret_cast<const sockaddr*>(&address);
    if (::connect(socket.get(), peer, plan_.target.length) == 0) {
        watch(tag, socket.get(), kReadEvents, true);
        link.socket = std::move(socket);
        on_connected(tag, now);
        return;
    }
    const int error = errno;
    if (error == EINPROGRESS || error == EINTR) {
        // The usual case: the handshake completes later and epoll reports
        // the socket writable.
        watch(tag, socket.get(), EPOLLOUT, true);
        link.socket = std::move(socket);
        link.state = LinkState::connecting;
        link.since = now;
        ++pending_connects_;
        return;
    }
    fail(tag, ErrorKind::connect, "connect to " + plan_.target.name + ": " + error_text(error));
}

void Worker::on_connect_ready(std::uint64_t tag, TimePoint now) {
    Link& link = link_of(tag);
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(link.socket.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0)
        throw_errno("getsockopt(SO_ERROR)");
    if (error != 0) {
        fail(tag, ErrorKind::connect, "connect to " + plan_.target.name + ": " + error_text(error));
        return;
    }
    --pending_connects_;
    link.state = LinkState::open;
    watch(tag, link.socket.get(), kReadEvents, false);
    on_connected(tag, now);
}

void Worker::on_connected(std::uint64_t tag, TimePoint now) {
    link_of(tag).state = LinkState::open;
    if (is_idle(tag) || !load_running_) return;
    ActiveConn& conn = active_[index_of(tag)];
    // A reconnected closed-loop connection starts over with a full pipeline.
    // At a fixed rate the schedule went on meanwhile: the requests it missed
    // are sent now, late, and their latency counts from when they were due.
    if (plan_.rate <= 0) conn.free_slots.assign(static_cast<std::size_t>(plan_.pipeline), now);
    try_send(index_of(tag), now);
}

void Worker::watch(std::uint64_t tag, int fd, std::uint32_t events, bool add) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) != 0)
        throw_errno("epoll_ctl");
}

void Worker::fail(std::uint64_t tag, ErrorKind kind, const std::string& detail) {
    stats_.add_error(kind, describe(tag) + ": " + detail);
    close_link(tag);
    Link& link = link_of(tag);
    if (++link.failures > plan_.max_retries) {
        link.state = LinkState::dead;
        if (!is_idle(tag)) --live_active_;
        return;
    }
    link.state = LinkState::retrying;
    link.retry_at = Clock::now() + backoff(link.failures);
    arm_timer(tag, link.retry_at);
}

void Worker::close_link(std::uint64_t tag) {
    Link& link = link_of(tag);
    if (link.state == LinkState::connecting) --pending_connects_;
    link.socket.reset();  // close() also takes it out of the epoll set
    if (is_idle(tag)) return;
    ActiveConn& conn = active_[index_of(tag)];
    for (const InFlight& request : conn.in_flight)
        if (request.measured) --measured_in_flight_;
    conn.in_flight.clear();
    conn.free_slots.clear();
    conn.out.clear();
    conn.out_sent = 0;
    conn.want_write = false;
    conn.checker.reset();
}

void Worker::sweep(TimePoint now) {
    const std::string limit = milliseconds(plan_.timeout);
    for (std::size_t i = 0; i < active_.size(); ++i) {
        const ActiveConn& conn = active_[i];
        if (conn.link.state == LinkState::connecting && now - conn.link.since > plan_.timeout) {
            fail(tag_of(false, i), ErrorKind::connect, "connect not done within " + limit);
        } else if (conn.link.state == LinkState::open && !conn.in_flight.empty() &&
                   now - conn.in_flight.front().sent > plan_.timeout) {
            fail(tag_of(false, i), ErrorKind::timeout,
                 "no reply within " + limit + " (" + std::to_string(conn.in_flight.size()) +
                     " request(s) outstanding)");
        }
    }
    for (std::size_t i = 0; i < idle_.size(); ++i)
        if (idle_[i].state == LinkState::connecting && now - idle_[i].since > plan_.timeout)
            fail(tag_of(true, i), ErrorKind::connect, "connect not done within " + limit);
}

// ---------------------------------------------------------------------------
// Events

void Worker::dispatch(std::uint64_t tag, std::uint32_t events) {
    const std::size_t index = index_of(tag);
    const LinkState state = link_of(tag).state;
    if (state == LinkState::connecting) {
        on_connect_ready(tag, Clock::now());
        return;
    }
    // Anything else but open: closed earlier in this same batch of events.
    if (state != LinkState::open) return;
    if (is_idle(tag)) {
        on_idle_event(index);
        return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0 && !on_readable(index)) return;
    if ((events & EPOLLOUT) != 0) try_send(index, Clock::now());
}

void Worker::on_idle_event(std::size_t index) {
    // An idle connection never sends, so the server has nothing to say to
    // it: any event is the server closing it or refusing it (ERR 503 busy).
    std::array<char, 256> bytes;
    const ssize_t got = ::recv(idle_[index].socket.get(), bytes.data(), bytes.size(), 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    fail(tag_of(true, index), ErrorKind::idle_closed, idle_failure(got, bytes.data(), errno));
}

bool Worker::on_readable(std::size_t index) {
    ActiveConn& conn = active_[index];
    const std::uint64_t tag = tag_of(false, index);
    // A few reads per wake-up let a large body in faster; a short read means
    // the socket is drained, which saves the read that would say EAGAIN.
    for (int round = 0; round < 4; ++round) {
        const ssize_t got =
            ::recv(conn.link.socket.get(), read_buffer_.data(), read_buffer_.size(), 0);
        if (got > 0) {
            const auto size = static_cast<std::size_t>(got);
            if (!feed(index, {read_buffer_.data(), size}, Clock::now())) return false;
            if (size < read_buffer_.size()) break;
            continue;
        }
        if (got == 0) {
            const std::size_t outstanding = conn.in_flight.size();
            fail(tag, ErrorKind::closed,
                 outstanding > 0 ? "server closed the connection with " +
                                       std::to_string(outstanding) + " request(s) outstanding"
                                 : std::string("server closed a keep-alive connection"));
            return false;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        const int error = errno;  // ECONNRESET, mostly
        fail(tag, ErrorKind::reset, "recv: " + error_text(error));
        return false;
    }
    try_send(index, Clock::now());
    return true;
}

bool Worker::feed(std::size_t index, std::string_view data, TimePoint now) {
    ActiveConn& conn = active_[index];
    const std::uint64_t tag = tag_of(false, index);
    while (!data.empty()) {
        if (conn.in_flight.empty()) {
            fail(tag, ErrorKind::bad_reply,
                 "bytes with no request outstanding: \"" + excerpt(data) + "\"");
            return false;
        }
        const std::uint64_t key = conn.in_flight.front().key;
        const ReplyStep step = conn.checker.consume(data, key);
        if (step.status == ReplyStep::Status::need_more) return true;
        if (step.status == ReplyStep::Status::failed) {
            fail(tag, step.error, "request #" + std::to_string(key) + ": " + step.detail);
            return false;
        }
        complete_request(conn, step, now);
        if (step.server_closes) {
            on_server_close(index);
            return false;
        }
    }
    return true;
}

void Worker::complete_request(ActiveConn& conn, const ReplyStep& step, TimePoint now) {
    const InFlight request = conn.in_flight.front();
    conn.in_flight.pop_front();
    conn.link.failures = 0;
    if (request.measured) {
        --measured_in_flight_;
        if (now <= end_time_) {
            ++stats_.requests;
            stats_.payload_bytes += step.body_bytes;
            stats_.latency_ns.record(static_cast<std::uint64_t>((now - request.intended).count()));
        }
    }
    if (plan_.rate <= 0) conn.free_slots.push_back(now + plan_.think);
}

void Worker::on_server_close(std::size_t index) {
    // The reply said `Connection: close` (nginx does after keepalive_requests
    // replies). Not an error, but the requests pipelined behind it will get no
    // reply: hand their tickets back and reconnect.
    ActiveConn& conn = active_[index];
    ++stats_.server_closes;
    const auto unanswered = std::count_if(conn.in_flight.begin(), conn.in_flight.end(),
                                          [](const InFlight& request) { return request.measured; });
    if (plan_.requests) shared_.return_tickets(unanswered);
    const std::uint64_t tag = tag_of(false, index);
    close_link(tag);
    queue_connect(tag);
}

void Worker::try_send(std::size_t index, TimePoint now) {
    ActiveConn& conn = active_[index];
    if (!load_running_ || conn.link.state != LinkState::open) return;
    const bool closed_loop = plan_.rate <= 0;
    const auto depth = static_cast<std::size_t>(plan_.pipeline);

    // Queue every request that is due and has a free pipeline slot, then
    // write them together: with pipelining, one send() carries several.
    while (conn.in_flight.size() < depth && now < end_time_) {
        if (closed_loop && conn.free_slots.empty()) break;
        const TimePoint due = closed_loop ? conn.free_slots.front() : conn.next_send;
        if (due > now) {
            arm_timer(tag_of(false, index), due);
            break;
        }
        const bool measured = due >= measure_start_;
        if (measured && plan_.requests && !shared_.take_ticket()) break;
        if (closed_loop)
            conn.free_slots.pop_front();
        else
            conn.next_send += interval_;
        plan_.workload->append_request(conn.out, conn.next_key);
        conn.in_flight.push_back(
            InFlight{.intended = due, .sent = now, .key = conn.next_key++, .measured = measured});
        if (measured) ++measured_in_flight_;
    }
    flush(index);
}

bool Worker::flush(std::size_t index) {
    ActiveConn& conn = active_[index];
    while (conn.out_sent < conn.out.size()) {
        const ssize_t sent = ::send(conn.link.socket.get(), conn.out.data() + conn.out_sent,
                                    conn.out.size() - conn.out_sent, MSG_NOSIGNAL);
        if (sent >= 0) {
            conn.out_sent += static_cast<std::size_t>(sent);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            // The server is not reading fast enough: finish when epoll says
            // there is room again.
            set_write_interest(conn, true);
            return true;
        }
        if (errno == EINTR) continue;
        const int error = errno;  // EPIPE, ECONNRESET
        fail(tag_of(false, index), ErrorKind::reset, "send: " + error_text(error));
        return false;
    }
    conn.out.clear();
    conn.out_sent = 0;
    set_write_interest(conn, false);
    return true;
}

void Worker::set_write_interest(ActiveConn& conn, bool want) {
    if (conn.want_write == want) return;
    conn.want_write = want;
    const auto index = static_cast<std::size_t>(&conn - active_.data());
    watch(tag_of(false, index), conn.link.socket.get(), kReadEvents | (want ? EPOLLOUT : 0u),
          false);
}

// ---------------------------------------------------------------------------
// Timers: a min-heap of wake-ups. An entry may be stale (its connection was
// closed or rescheduled meanwhile): firing it only makes the connection look
// at its state again, which is harmless.

void Worker::arm_timer(std::uint64_t tag, TimePoint at) {
    if (!is_idle(tag)) {
        ActiveConn& conn = active_[index_of(tag)];
        if (conn.timer_at <= at) return;  // an earlier wake-up will look again
        conn.timer_at = at;
    }
    timers_.push(Timer{at, tag});
}

void Worker::fire_timers(TimePoint now) {
    while (!timers_.empty() && timers_.top().at <= now) {
        const Timer timer = timers_.top();
        timers_.pop();
        if (!is_idle(timer.tag)) {
            ActiveConn& conn = active_[index_of(timer.tag)];
            if (conn.timer_at == timer.at) conn.timer_at = TimePoint::max();
        }
        Link& link = link_of(timer.tag);
        if (link.state == LinkState::retrying) {
            if (now >= link.retry_at)
                queue_connect(timer.tag);
            else
                arm_timer(timer.tag, link.retry_at);
        } else if (link.state == LinkState::open && !is_idle(timer.tag)) {
            try_send(index_of(timer.tag), now);
        }
    }
}

}  // namespace iolab::loadgen
