// Stats: what one worker thread counted. Merged across workers for the report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "histogram.hpp"

namespace iolab::loadgen {

// Every way a request or a connection can fail. A failure is counted once,
// as one of these, and never as a request; the connection it happened on is
// closed and reconnected (a bounded number of times in a row).
enum class ErrorKind {
    connect,       // connect() refused or failed, or did not complete within --timeout
    timeout,       // a reply did not arrive within --timeout
    reset,         // the server reset the connection (ECONNRESET, EPIPE on send)
    closed,        // the server closed a connection it should have kept alive
    mismatch,      // a well-formed reply carrying the wrong bytes
    bad_reply,     // bytes that are not a valid reply (framing, headers, stray bytes)
    server_error,  // the server answered `ERR ...` or an HTTP status other than 200
    idle_closed,   // an idle connection was closed by the server or got data from it
};

inline constexpr std::size_t kErrorKindCount = 8;

// The names used in the report and as the keys of JSON "error_kinds".
inline constexpr std::array<std::string_view, kErrorKindCount> kErrorKindNames = {
    "connect", "timeout", "reset", "closed", "mismatch", "bad_reply", "server_error", "idle_closed",
};

struct Stats {
    std::uint64_t requests = 0;       // replies checked and found correct, in the measured window
    std::uint64_t payload_bytes = 0;  // their payload: echo text, file or POST body
    Histogram latency_ns;             // from each request's intended send time to its reply
    std::array<std::uint64_t, kErrorKindCount> errors{};
    std::array<std::string, kErrorKindCount> first_error;  // what the first of each kind said
    std::uint64_t reconnects = 0;        // connection attempts after a link's first one
    std::uint64_t server_closes = 0;     // HTTP replies that announced `Connection: close`
    std::uint64_t idle_open_at_end = 0;  // idle connections still open when the run ended

    void add_error(ErrorKind kind, std::string detail) {
        const auto index = static_cast<std::size_t>(kind);
        if (errors[index]++ == 0) first_error[index] = std::move(detail);
    }

    std::uint64_t error_count() const {
        std::uint64_t total = 0;
        for (std::uint64_t count : errors)
            total += count;
        return total;
    }

    void merge(const Stats& other) {
        requests += other.requests;
        payload_bytes += other.payload_bytes;
        latency_ns.merge(other.latency_ns);
        for (std::size_t i = 0; i < kErrorKindCount; ++i) {
            if (errors[i] == 0) first_error[i] = other.first_error[i];
            errors[i] += other.errors[i];
        }
        reconnects += other.reconnects;
        server_closes += other.server_closes;
        idle_open_at_end += other.idle_open_at_end;
    }
};

}  // namespace iolab::loadgen
