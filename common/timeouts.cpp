#include "timeouts.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>

namespace iolab {

namespace {

timeval to_timeval(Clock::duration d) {
    auto us = std::chrono::ceil<std::chrono::microseconds>(d).count();
    return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

}  // namespace

Waiting waiting_for(const Session& session, bool replies_pending) {
    if (replies_pending) return Waiting::client_to_read;
    return session.in_request() ? Waiting::rest_of_request : Waiting::next_request;
}

void ConnectionClock::update(Waiting waiting, Progress done, Clock::time_point now) {
    bool progress = false;
    switch (waiting) {
        case Waiting::next_request:
            progress = done.received;  // silence is broken by any byte
            break;
        case Waiting::rest_of_request:
            // A response came out and a request is still under way: that
            // one began after the last complete one, just now.
            progress = done.answered;
            break;
        case Waiting::client_to_read:
            progress = done.sent;
            break;
    }
    if (waiting != waiting_ || progress) since_ = now;
    waiting_ = waiting;
}

Clock::time_point ConnectionClock::deadline(const Timeouts& timeouts) const {
    std::chrono::seconds limit = waiting_ == Waiting::next_request      ? timeouts.idle
                                 : waiting_ == Waiting::rest_of_request ? timeouts.request
                                                                        : timeouts.send;
    return limit.count() == 0 ? Clock::time_point::max() : since_ + limit;
}

std::optional<std::chrono::seconds> shortest_timeout(const Timeouts& timeouts) {
    std::optional<std::chrono::seconds> shortest;
    for (std::chrono::seconds t : {timeouts.request, timeouts.idle, timeouts.send})
        if (t.count() > 0 && (!shortest || t < *shortest)) shortest = t;
    return shortest;
}

std::optional<std::chrono::milliseconds> sweep_interval(const Timeouts& timeouts) {
    std::optional<std::chrono::seconds> shortest = shortest_timeout(timeouts);
    if (!shortest) return std::nullopt;
    return std::min<std::chrono::milliseconds>(std::chrono::milliseconds(*shortest) / 4,
                                               std::chrono::seconds(1));
}

void reset_on_close(int socket) {
    linger abort{1, 0};
    ::setsockopt(socket, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
}

SocketTimeouts::SocketTimeouts(int socket, const Timeouts& timeouts)
    : socket_(socket), timeouts_(timeouts) {
    timeval send = to_timeval(timeouts.send);  // {0, 0}: block for ever
    ::setsockopt(socket_, SOL_SOCKET, SO_SNDTIMEO, &send, sizeof send);
}

bool SocketTimeouts::before_read(const Session& session) {
    // Every read() before this one returned bytes (else the caller stopped).
    Progress done{.received = !first_read_, .answered = session.answered() != answered_};
    first_read_ = false;
    answered_ = session.answered();
    Clock::time_point now = Clock::now();
    clock_.update(waiting_for(session, false), done, now);
    Clock::time_point deadline = clock_.deadline(timeouts_);
    if (now >= deadline) return false;
    auto wait = std::chrono::microseconds::zero();  // block for ever
    if (deadline != Clock::time_point::max())
        wait = std::chrono::ceil<std::chrono::microseconds>(deadline - now);
    if (wait != receive_timeout_) {
        timeval left = to_timeval(wait);
        ::setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &left, sizeof left);
        receive_timeout_ = wait;
    }
    return true;
}

TimeoutSweep::TimeoutSweep(const Timeouts& timeouts, Clock::time_point now)
    : timeouts_(timeouts), interval_(sweep_interval(timeouts)) {
    if (interval_) next_ = now + *interval_;
}

int TimeoutSweep::wait_ms(Clock::time_point now) const {
    if (!interval_) return -1;
    if (now >= next_) return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next_ - now).count());
}

std::optional<Clock::time_point> TimeoutSweep::next() const {
    if (!interval_) return std::nullopt;
    return next_;
}

bool TimeoutSweep::due(Clock::time_point now) {
    if (!interval_ || now < next_) return false;
    next_ = now + *interval_;
    return true;
}

bool TimeoutSweep::expire(const ConnectionClock& clock, int socket, Clock::time_point now) const {
    if (!clock.expired(timeouts_, now)) return false;
    if (clock.waiting() == Waiting::client_to_read) reset_on_close(socket);
    return true;
}

}  // namespace iolab
