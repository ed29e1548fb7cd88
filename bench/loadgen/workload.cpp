#include "workload.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

namespace iolab::loadgen {

namespace {

// Payload bytes come from this alphabet: printable, no space, no LF, so an
// ECHO text is a valid line and never looks like `ERR ...`.
constexpr std::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Reply heads longer than these are malformed (or not our protocol at all).
constexpr std::size_t kMaxLineHead = 256;        // "OK <size>\n"
constexpr std::size_t kMaxHttpHead = 16 * 1024;  // status line and headers

constexpr std::array<std::pair<WorkloadKind, std::string_view>, 4> kNames = {{
    {WorkloadKind::echo, "echo"},
    {WorkloadKind::get, "get"},
    {WorkloadKind::http_get, "http-get"},
    {WorkloadKind::http_echo, "http-echo"},
}};

ReplyStep failure(ErrorKind kind, std::string detail) {
    return ReplyStep{
        .status = ReplyStep::Status::failed, .error = kind, .detail = std::move(detail)};
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

// A decimal number and nothing else (no sign, no spaces).
std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    auto [stop, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
    return value;
}

// The first line of `bytes` (without its LF), for quoting a server's ERR reply.
std::string_view first_line(std::string_view bytes) {
    return bytes.substr(0, bytes.find('\n'));
}

}  // namespace

std::optional<WorkloadKind> parse_workload(std::string_view name) {
    for (const auto& [kind, kind_name] : kNames)
        if (kind_name == name) return kind;
    return std::nullopt;
}

std::string_view workload_name(WorkloadKind kind) {
    for (const auto& [each, name] : kNames)
        if (each == kind) return name;
    return "?";
}

std::string excerpt(std::string_view bytes, std::size_t limit) {
    std::string text;
    for (char c : bytes.substr(0, limit)) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\n') {
            text += "\\n";
        } else if (c == '\r') {
            text += "\\r";
        } else if (c == '"' || c == '\\') {
            text += '\\';
            text += c;
        } else if (byte < 0x20 || byte >= 0x7f) {
            constexpr std::string_view kHex = "0123456789abcdef";
            text += "\\x";
            text += kHex[byte >> 4];
            text += kHex[byte & 0xf];
        } else {
            text += c;
        }
    }
    if (bytes.size() > limit) text += "...";
    return text;
}

// ---------------------------------------------------------------------------
// Workload

Workload::Workload(WorkloadSettings settings) : settings_(std::move(settings)) {
    const std::string& host = settings_.host_header;
    switch (settings_.kind) {
        case WorkloadKind::echo:
        case WorkloadKind::http_echo:
            // Long enough for a window of `size` bytes at any offset below the
            // alphabet's length.
            pattern_.reserve(settings_.size + kAlphabet.size());
            while (pattern_.size() < settings_.size + kAlphabet.size())
                pattern_ += kAlphabet;
            break;
        case WorkloadKind::get:
        case WorkloadKind::http_get:
            break;
    }
    switch (settings_.kind) {
        case WorkloadKind::echo:
            fixed_request_ = "ECHO ";
            break;
        case WorkloadKind::get:
            fixed_request_ = "GET " + settings_.path + "\n";
            break;
        case WorkloadKind::http_get:
            fixed_request_ = "GET " + settings_.path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
            break;
        case WorkloadKind::http_echo:
            fixed_request_ = "POST /echo HTTP/1.1\r\nHost: " + host +
                             "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                             std::to_string(settings_.size) + "\r\n\r\n";
            break;
    }
}

bool Workload::is_http() const {
    return settings_.kind == WorkloadKind::http_get || settings_.kind == WorkloadKind::http_echo;
}

std::string_view Workload::payload(std::uint64_t key) const {
    return std::string_view(pattern_).substr(key % kAlphabet.size(), settings_.size);
}

void Workload::append_request(std::string& out, std::uint64_t key) const {
    out += fixed_request_;
    switch (settings_.kind) {
        case WorkloadKind::echo:
            out += payload(key);
            out += '\n';
            break;
        case WorkloadKind::http_echo:
            out += payload(key);
            break;
        case WorkloadKind::get:
        case WorkloadKind::http_get:
            break;
    }
}

std::optional<std::string_view> Workload::expected_body(std::uint64_t key) const {
    switch (settings_.kind) {
        case WorkloadKind::echo:
        case WorkloadKind::http_echo:
            return payload(key);
        case WorkloadKind::get:
        case WorkloadKind::http_get:
            if (settings_.expected_file) return std::string_view(*settings_.expected_file);
            return std::nullopt;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// ReplyChecker

void ReplyChecker::reset() {
    phase_ = Phase::idle;
    head_.clear();
    expected_.reset();
    body_length_ = 0;
    body_received_ = 0;
    close_after_ = false;
}

void ReplyChecker::start(std::uint64_t key) {
    reset();
    expected_ = workload_->expected_body(key);
    if (workload_->settings().kind == WorkloadKind::echo) {
        // An echo reply has no head: the text itself, then LF.
        body_length_ = workload_->settings().size;
        phase_ = Phase::body;
    } else {
        phase_ = Phase::head;
    }
}

ReplyStep ReplyChecker::consume(std::string_view& input, std::uint64_t key) {
    if (phase_ == Phase::idle) start(key);
    for (;;) {
        switch (phase_) {
            case Phase::head:
                if (input.empty()) return ReplyStep{};
                if (std::optional<ReplyStep> failed = consume_head(input)) return *failed;
                break;
            case Phase::body:
                if (body_received_ == body_length_) {
                    const bool echo = workload_->settings().kind == WorkloadKind::echo;
                    phase_ = echo ? Phase::newline : Phase::done;
                    break;
                }
                if (input.empty()) return ReplyStep{};
                if (std::optional<ReplyStep> failed = consume_body(input)) return *failed;
                break;
            case Phase::newline:
                if (input.empty()) return ReplyStep{};
                if (input.front() != '\n') {
                    if (body_length_ == 0 && input.starts_with("ERR"))
                        return failure(ErrorKind::server_error,
                                       "server replied: " + excerpt(first_line(input)));
                    return failure(ErrorKind::mismatch,
                                   "expected LF after the " + std::to_string(body_length_) +
                                       "-byte text, got \"" + excerpt(input, 24) + "\"");
                }
                input.remove_prefix(1);
                phase_ = Phase::done;
                break;
            case Phase::done: {
                ReplyStep complete;
                complete.status = ReplyStep::Status::complete;
                complete.body_bytes = body_length_;
                complete.server_closes = close_after_;
                reset();
                return complete;
            }
            case Phase::idle:
                return failure(ErrorKind::bad_reply, "internal: reply checker lost its state");
        }
    }
}

std::optional<ReplyStep> ReplyChecker::consume_head(std::string_view& input) {
    const bool http = workload_->is_http();
    const std::string_view terminator = http ? "\r\n\r\n" : "\n";
    const std::size_t limit = http ? kMaxHttpHead : kMaxLineHead;

    // Take what may belong to the head, then look for its end; the terminator
    // may straddle the previous chunk and this one.
    const std::size_t old_size = head_.size();
    const std::size_t taken = std::min(input.size(), limit - old_size);
    head_.append(input.substr(0, taken));
    const std::size_t search_from =
        old_size >= terminator.size() - 1 ? old_size - (terminator.size() - 1) : 0;
    const std::size_t found = head_.find(terminator, search_from);
    if (found == std::string::npos) {
        if (head_.size() >= limit)
            return failure(ErrorKind::bad_reply, "reply head longer than " + std::to_string(limit) +
                                                     " bytes: \"" + excerpt(head_) + "\"");
        input.remove_prefix(taken);
        return std::nullopt;
    }
    // Give the bytes after the head back: they are the body.
    const std::size_t head_end = found + terminator.size();
    input.remove_prefix(head_end - old_size);
    head_.resize(head_end);
    return http ? parse_http_head(head_)
                : parse_line_head(std::string_view(head_).substr(0, found));
}

std::optional<ReplyStep> ReplyChecker::parse_line_head(std::string_view line) {
    if (line.starts_with("ERR "))
        return failure(ErrorKind::server_error, "server replied: " + excerpt(line));
    std::optional<std::uint64_t> size;
    if (line.starts_with("OK ")) size = parse_decimal(line.substr(3));
    if (!size)
        return failure(ErrorKind::bad_reply,
                       "expected \"OK <size>\", got \"" + excerpt(line) + "\"");
    body_length_ = *size;
    return check_length();
}

std::optional<ReplyStep> ReplyChecker::parse_http_head(std::string_view head) {
    std::string_view rest = head;
    auto next_line = [&rest] {
        const std::size_t end = rest.find("\r\n");  // present: the head ends in CRLF CRLF
        const std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 2);
        return line;
    };

    // "HTTP/1.1 200 OK": version, space, three digits, then a space and a
    // reason phrase or nothing.
    const std::string_view status_line = next_line();
    const auto digit = [&status_line](std::size_t i) {
        return std::isdigit(static_cast<unsigned char>(status_line[i])) != 0;
    };
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") ||
        (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' || !digit(9) ||
        !digit(10) || !digit(11) || (status_line.size() > 12 && status_line[12] != ' '))
        return failure(ErrorKind::bad_reply, "bad status line \"" + excerpt(status_line) + "\"");
    const bool ok = status_line.substr(9, 3) == "200";
    // HTTP/1.0 closes after each reply unless told otherwise; 1.1 keeps alive.
    close_after_ = status_line[7] == '0';

    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return failure(ErrorKind::bad_reply, "bad header line \"" + excerpt(line) + "\"");
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (equals_ignoring_case(name, "Content-Length")) {
            std::optional<std::uint64_t> length = parse_decimal(value);
            if (!length || (content_length && *content_length != *length))
                return failure(ErrorKind::bad_reply,
                               "bad Content-Length \"" + excerpt(value) + "\"");
            content_length = length;
        } else if (equals_ignoring_case(name, "Transfer-Encoding")) {
            chunked = true;
        } else if (equals_ignoring_case(name, "Connection")) {
            // A comma-separated list of tokens.
            std::string_view tokens = value;
            while (!tokens.empty()) {
                const std::size_t comma = tokens.find(',');
                const std::string_view token = trim(tokens.substr(0, comma));
                if (equals_ignoring_case(token, "close")) close_after_ = true;
                if (equals_ignoring_case(token, "keep-alive")) close_after_ = false;
                tokens = comma == std::string_view::npos ? "" : tokens.substr(comma + 1);
            }
        }
    }

    if (!ok)
        return failure(ErrorKind::server_error, "server replied \"" + excerpt(status_line) + "\"");
    if (chunked)
        return failure(ErrorKind::bad_reply,
                       "Transfer-Encoding in a reply: the protocol's replies carry Content-Length");
    if (!content_length) return failure(ErrorKind::bad_reply, "200 reply without Content-Length");
    body_length_ = *content_length;
    return check_length();
}

std::optional<ReplyStep> ReplyChecker::check_length() {
    if (expected_ && body_length_ != expected_->size())
        return failure(ErrorKind::mismatch, "reply announces " + std::to_string(body_length_) +
                                                " bytes, expected " +
                                                std::to_string(expected_->size()));
    phase_ = Phase::body;
    return std::nullopt;
}

std::optional<ReplyStep> ReplyChecker::consume_body(std::string_view& input) {
    const auto wanted = static_cast<std::size_t>(body_length_ - body_received_);
    const std::string_view got = input.substr(0, std::min(input.size(), wanted));
    if (expected_) {
        const std::string_view want = expected_->substr(body_received_, got.size());
        if (got != want) {
            const auto at = static_cast<std::size_t>(
                std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin());
            const std::uint64_t position = body_received_ + at;
            // An echo reply has no head, so an ERR reply shows up as a
            // mismatch at its first byte: report it as what it is.
            if (position == 0 && workload_->settings().kind == WorkloadKind::echo &&
                got.starts_with("ERR"))
                return failure(ErrorKind::server_error,
                               "server replied: " + excerpt(first_line(input)));
            return failure(ErrorKind::mismatch, "byte " + std::to_string(position) + " of " +
                                                    std::to_string(body_length_) +
                                                    " differs: expected \"" +
                                                    excerpt(want.substr(at), 24) + "\", got \"" +
                                                    excerpt(got.substr(at), 24) + "\"");
        }
    }
    body_received_ += got.size();
    input.remove_prefix(got.size());
    return std::nullopt;
}

}  // namespace iolab::loadgen
