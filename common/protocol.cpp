#include "protocol.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "log.hpp"

namespace iolab {

namespace {

// tchar from RFC 9110 5.6.2: the characters a method or header name may use.
bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool has_control_bytes(std::string_view s, bool allow_tab) {
    return std::any_of(s.begin(), s.end(), [&](char c) {
        auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && !(allow_tab && c == '\t')) || u == 0x7f;
    });
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

// Does the start of a too-long line look like an HTTP request? Then its 414
// is answered in HTTP, so curl and browsers show a proper error.
bool looks_like_http(std::string_view start) {
    static constexpr std::array methods = {"GET ",     "HEAD ",  "POST ",  "PUT ",    "DELETE ",
                                           "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "};
    return std::any_of(methods.begin(), methods.end(), [&](const char* m) {
        std::string_view method(m);
        return start.starts_with(method) && start.size() > method.size() &&
               (start[method.size()] == '/' || start[method.size()] == 'h');
    });
}

std::string line_error_for(int status) {
    switch (status) {
        case 404:
            return "ERR 404 not found\n";
        case 403:
            return "ERR 403 forbidden\n";
        case 503:
            return "ERR 503 busy\n";
        default:
            return "ERR 400 bad path\n";
    }
}

Response line_reply(std::string text, bool close_after = false) {
    Response r;
    r.head = std::move(text);
    r.close_after = close_after;
    r.is_error = r.head.starts_with("ERR ");
    return r;
}

Response line_too_long(std::string_view start) {
    if (!looks_like_http(start)) return line_reply("ERR 414 line too long\n", true);
    Response r;
    r.head =
        "HTTP/1.1 414 URI Too Long\r\nServer: iolab\r\nContent-Type: text/plain\r\n"
        "Content-Length: 17\r\nConnection: close\r\n\r\n414 URI Too Long\n";
    r.close_after = true;
    r.is_error = true;
    return r;
}

}  // namespace

Session::Session(const DocRoot& root, Limits limits) : root_(root), limits_(limits) {}

void Session::feed(std::string_view bytes) {
    if (closing_ || eof_) return;
    compact();
    in_.append(bytes);
}

void Session::feed_eof() {
    eof_ = true;
}

// Drops parsed bytes from the front of the buffer once they are a large part
// of it, so a long pipelined stream does not keep them all.
void Session::compact() {
    if (pos_ == 0) return;
    if (pos_ == in_.size()) {
        in_.clear();
        pos_ = 0;
        if (in_.capacity() > 64 * 1024)
            std::string().swap(in_);  // give back a big POST body's room
    } else if (pos_ >= in_.size() / 2) {
        in_.erase(0, pos_);
        pos_ = 0;
    }
}

std::optional<std::string_view> Session::take_line() {
    std::size_t lf = in_.find('\n', pos_ + scanned_);
    if (lf == std::string::npos) {
        scanned_ =
            in_.size() - pos_;  // 1-byte feeds do not rescan from the start: O(n), not O(n^2)
        return std::nullopt;
    }
    std::string_view line(in_.data() + pos_, lf - pos_);
    if (line.ends_with('\r')) line.remove_suffix(1);
    pos_ = lf + 1;
    scanned_ = 0;
    return line;
}

Response Session::finish(Response r) {
    ++answered_;
    if (r.close_after) {
        closing_ = true;
        pos_ = in_.size();  // whatever follows a closing reply is never answered
    }
    return r;
}

std::optional<Response> Session::next_response() {
    while (!closing_) {
        if (state_ == State::body) {
            if (buffered() < req_.content_length) {
                if (eof_) closing_ = true;  // the body will never be complete
                return std::nullopt;
            }
            return finish(http_response());
        }
        std::optional<std::string_view> line = take_line();
        if (!line) {
            if (state_ == State::request_line) {
                // A CR at the end may be the line's own, waiting for its LF.
                std::size_t allowed =
                    limits_.max_line + (buffered() > 0 && in_.back() == '\r' ? 1 : 0);
                if (buffered() > allowed)
                    return finish(line_too_long(std::string_view(in_).substr(pos_, 16)));
                if (eof_ && buffered() > 0) {
                    // The last line had no LF: answer it as a line all the same.
                    std::string last = in_.substr(pos_);
                    pos_ = in_.size();
                    if (last.ends_with('\r')) last.pop_back();
                    if (std::optional<Response> r = on_request_line(last))
                        return finish(std::move(*r));
                }
            } else if (req_.header_bytes + buffered() > limits_.max_header_block + 1) {
                return finish(http_error(431, true));
            }
            return std::nullopt;
        }
        std::optional<Response> r =
            state_ == State::request_line ? on_request_line(*line) : on_header_line(*line);
        if (r) return finish(std::move(*r));
    }
    return std::nullopt;
}

std::optional<Response> Session::on_request_line(std::string_view line) {
    if (line.empty()) return std::nullopt;  // empty lines are ignored
    if (line.size() > limits_.max_line) return line_too_long(line.substr(0, 16));
    // ECHO's text is taken as is, even if it happens to end in " HTTP/1.1".
    if (line == "ECHO" || line.starts_with("ECHO ")) return on_line_command(line);

    // METHOD SP TARGET SP HTTP/x.y: exactly three parts, the last an HTTP version.
    std::size_t first_space = line.find(' ');
    std::size_t last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space ||
        line.find(' ', first_space + 1) != last_space ||
        !line.substr(last_space + 1).starts_with("HTTP/"))
        return on_line_command(line);

    req_ = HttpRequest{};
    std::string_view method = line.substr(0, first_space);
    std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    std::string_view version = line.substr(last_space + 1);
    if (!is_token(method) || target.empty() || has_control_bytes(line, false))
        return http_error(400, true);
    // HTTP/<digit>.<digit>: 1.x is ours (a minor above 1 is read as 1.1), other majors are not.
    if (version.size() != 8 || !std::isdigit(static_cast<unsigned char>(version[5])) ||
        version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7])))
        return http_error(400, true);
    if (version[5] != '1') return http_error(505, true);
    req_.method = method;
    req_.target = target;
    req_.minor_version = version[7] == '0' ? 0 : 1;
    state_ = State::headers;
    return std::nullopt;
}

std::optional<Response> Session::on_line_command(std::string_view line) {
    if (line == "ECHO") return line_reply("\n");
    if (line.starts_with("ECHO ")) return line_reply(std::string(line.substr(5)) + "\n");
    if (line == "QUIT") return line_reply("BYE\n", true);
    if (line == "GET") return line_get("");
    if (line.starts_with("GET ")) return line_get(line.substr(4));
    return line_reply("ERR 400 unknown command\n");
}

Response Session::line_get(std::string_view path) {
    // The line protocol takes the path literally: no percent-decoding.
    if (path.empty()) return line_reply("ERR 400 bad path\n");
    OpenedFile opened = root_.open(path);
    if (opened.status != 200) return line_reply(line_error_for(opened.status));
    Response r;
    r.head = concat("OK ", opened.size, "\n");
    r.file = std::move(opened.file);
    r.file_length = opened.size;
    return r;
}

std::optional<Response> Session::on_header_line(std::string_view line) {
    req_.header_bytes += line.size() + 2;
    if (req_.header_bytes > limits_.max_header_block) return http_error(431, true);
    if (line.empty()) return on_headers_done();
    // Folded header lines (obs-fold) were a smuggling vector; RFC 9112 lets
    // a server reject them.
    if (line.front() == ' ' || line.front() == '\t') return http_error(400, true);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
        return http_error(400, true);
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (has_control_bytes(value, true)) return http_error(400, true);

    if (iequals(name, "host")) {
        if (req_.has_host) return http_error(400, true);
        req_.has_host = true;
    } else if (iequals(name, "content-length")) {
        // One Content-Length, digits only. Two of them (even equal) or a
        // Transfer-Encoding beside it is how requests get smuggled past a
        // proxy that reads the framing differently: refuse, and close.
        std::uint64_t length = 0;
        auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
        if (req_.has_length || value.empty() || value.size() > 18 || error != std::errc{} ||
            end != value.data() + value.size() || value.front() == '+' || value.front() == '-')
            return http_error(400, true);
        req_.has_length = true;
        req_.content_length = length;
    } else if (iequals(name, "transfer-encoding")) {
        return http_error(501, true);  // no chunked bodies here
    } else if (iequals(name, "connection")) {
        // A comma-separated list of tokens, compared case-insensitively.
        while (!value.empty()) {
            std::size_t comma = value.find(',');
            std::string_view token = trim(value.substr(0, comma));
            if (iequals(token, "close")) req_.wants_close = true;
            if (iequals(token, "keep-alive")) req_.wants_keep_alive = true;
            value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        }
    } else if (iequals(name, "expect")) {
        req_.expect_continue = iequals(value, "100-continue");
    }
    return std::nullopt;
}

std::optional<Response> Session::on_headers_done() {
    // HTTP/1.1 keeps the connection unless told to close; 1.0 closes unless told to keep it.
    req_.keep_alive = !req_.wants_close && (req_.minor_version >= 1 || req_.wants_keep_alive);
    if (req_.minor_version >= 1 && !req_.has_host) return http_error(400, true);
    if (req_.method == "POST" && !req_.has_length) return http_error(411, true);
    if (req_.content_length > limits_.max_body) return http_error(413, true);
    state_ = State::body;  // wait for the body (maybe empty) before answering
    if (req_.expect_continue && req_.minor_version >= 1 && req_.content_length > 0) {
        // curl sends `Expect: 100-continue` before a large body and waits for
        // this. Sent even if the body is already here (RFC 9110 allows it), so
        // the replies never depend on how the bytes were chunked.
        Response interim;
        interim.head = "HTTP/1.1 100 Continue\r\n\r\n";
        return interim;
    }
    return std::nullopt;
}

Response Session::http_response() {
    std::string body = in_.substr(pos_, req_.content_length);
    pos_ += req_.content_length;
    state_ = State::request_line;

    bool get = req_.method == "GET", head = req_.method == "HEAD", post = req_.method == "POST";
    if (!get && !head && !post) return http_error(405, !req_.keep_alive);

    // origin-form "/path?query", or absolute-form "http://host/path?query".
    std::string_view target = req_.target;
    if (std::size_t scheme = target.find("://");
        !target.starts_with('/') && scheme != std::string_view::npos) {
        std::size_t path_start = target.find('/', scheme + 3);
        target = path_start == std::string_view::npos ? "/" : target.substr(path_start);
    }
    if (!target.starts_with('/')) return http_error(400, !req_.keep_alive);
    target = target.substr(0, target.find_first_of("?#"));
    std::string path;
    if (!percent_decode(target, path)) return http_error(400, !req_.keep_alive);

    Response r;
    r.close_after = !req_.keep_alive;
    std::string_view connection = r.close_after ? "close" : "keep-alive";
    if (post) {
        if (path != "/echo") return http_error(405, !req_.keep_alive);
        r.head =
            concat("HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Type: application/octet-stream\r\n",
                   "Content-Length: ", body.size(), "\r\nConnection: ", connection, "\r\n\r\n");
        r.head += body;
        return r;
    }
    OpenedFile opened = root_.open(path);
    if (opened.status != 200) return http_error(opened.status, !req_.keep_alive);
    r.head =
        concat("HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Type: ",
               content_type(path == "/" ? "index.html" : path), "\r\nContent-Length: ", opened.size,
               "\r\nConnection: ", connection, "\r\n\r\n");
    if (get) {
        r.file = std::move(opened.file);
        r.file_length = opened.size;
    }
    return r;
}

Response Session::http_error(int status, bool close) {
    std::string body = concat(status, " ", reason_phrase(status), "\n");
    Response r;
    r.head =
        concat("HTTP/1.1 ", status, " ", reason_phrase(status),
               "\r\nServer: iolab\r\nContent-Type: text/plain\r\nContent-Length: ", body.size(),
               "\r\nConnection: ", close ? "close" : "keep-alive", "\r\n");
    if (status == 405) r.head += "Allow: GET, HEAD, POST\r\n";
    r.head += "\r\n";
    if (req_.method != "HEAD") r.head += body;  // a reply to HEAD carries no body
    r.close_after = close;
    r.is_error = true;
    return r;
}

}  // namespace iolab
