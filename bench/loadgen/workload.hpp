// Workload: what the load generator sends, and what each reply must be.
//
// Requests are numbered per connection (their `key`). Payloads (the ECHO
// text, the POST /echo body) are cut from one shared pattern at an offset
// that depends on the key, so consecutive requests carry different bytes: a
// server that answers out of order, or mixes up two connections' buffers, is
// caught by the byte-for-byte check. Yet building a request allocates
// nothing and checking a reply needs no stored copy of what was sent.
//
// ReplyChecker is sans-I/O, like the servers' protocol core: it is fed the
// bytes a connection received and says when a reply is complete and correct,
// or what is wrong with it. It never touches a socket. It deliberately shares
// no code with common/: the harness checks the servers independently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stats.hpp"

namespace iolab::loadgen {

enum class WorkloadKind {
    echo,       // ECHO <size bytes>        -> the same bytes and LF
    get,        // GET <path>               -> OK <n> LF, n bytes
    http_get,   // GET <path> HTTP/1.1      -> 200 with Content-Length
    http_echo,  // POST /echo, <size> body  -> 200 with the same body
};

std::optional<WorkloadKind> parse_workload(std::string_view name);
std::string_view workload_name(WorkloadKind kind);

// The protocol's limits that bound --size.
inline constexpr std::size_t kMaxLine = 8192;  // request line, LF included
inline constexpr std::size_t kMaxEchoSize = kMaxLine - std::string_view("ECHO \n").size();
inline constexpr std::size_t kMaxPostBody = 1024 * 1024;

struct WorkloadSettings {
    WorkloadKind kind = WorkloadKind::echo;
    std::size_t size = 64;             // echo, http-echo: payload bytes per request
    std::string path = "/index.html";  // get, http-get
    std::string host_header;           // HTTP: the Host header's value
    // get, http-get: the bytes the server must send (--expect-file), if known.
    std::optional<std::string> expected_file;
};

class Workload {
public:
    explicit Workload(WorkloadSettings settings);

    const WorkloadSettings& settings() const { return settings_; }
    bool is_http() const;

    // Appends the bytes of request number `key` to `out`.
    void append_request(std::string& out, std::uint64_t key) const;

    // The body the reply to request `key` must carry: the echoed payload, or
    // the expected file. Nothing when unknown (a GET without --expect-file).
    std::optional<std::string_view> expected_body(std::uint64_t key) const;

private:
    std::string_view payload(std::uint64_t key) const;

    WorkloadSettings settings_;
    std::string pattern_;        // payloads are windows into this
    std::string fixed_request_;  // the part of every request that does not vary
};

// The result of feeding bytes to a ReplyChecker.
struct ReplyStep {
    enum class Status { need_more, complete, failed };
    Status status = Status::need_more;
    ErrorKind error = ErrorKind::bad_reply;  // failed: what kind of failure
    std::string detail;                      // failed: what exactly was wrong
    std::uint64_t body_bytes = 0;            // complete: the payload the reply carried
    bool server_closes = false;              // complete: the server announced it will close
};

class ReplyChecker {
public:
    explicit ReplyChecker(const Workload& workload) : workload_(&workload) {}

    // Forgets any partial reply: the connection was replaced by a new one.
    void reset();

    // True when part of a reply has been received but not all of it.
    bool mid_reply() const { return phase_ != Phase::idle; }

    // Consumes bytes of the reply to request `key` from the front of `input`
    // (advancing it), stopping at the end of that reply so the rest can be fed
    // for the next request. need_more means all of `input` was consumed.
    ReplyStep consume(std::string_view& input, std::uint64_t key);

private:
    enum class Phase {
        idle,     // between replies
        head,     // OK line or HTTP status line and headers
        body,     // the payload
        newline,  // echo: the LF after the text
        done,     // complete, to be reported
    };

    void start(std::uint64_t key);
    std::optional<ReplyStep> consume_head(std::string_view& input);
    std::optional<ReplyStep> parse_line_head(std::string_view line);
    std::optional<ReplyStep> parse_http_head(std::string_view head);
    std::optional<ReplyStep> check_length();
    std::optional<ReplyStep> consume_body(std::string_view& input);

    const Workload* workload_;
    Phase phase_ = Phase::idle;
    std::string head_;
    std::optional<std::string_view> expected_;
    std::uint64_t body_length_ = 0;
    std::uint64_t body_received_ = 0;
    bool close_after_ = false;
};

// `bytes` made printable for an error message: at most `limit` bytes, with
// control characters escaped (\n, \r, \xNN).
std::string excerpt(std::string_view bytes, std::size_t limit = 48);

}  // namespace iolab::loadgen
