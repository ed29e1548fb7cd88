// The timeouts every server has (--request-timeout, --idle-timeout,
// --send-timeout; common/timeouts.hpp), checked the same way on each: a
// slowloris client is closed, a silent one too, an active one is not, and a
// client that stops reading is dropped while its server's memory stays put.
//
// The timeouts are 1-2 s and the windows around them wide (the machine may
// be busy): these are properties of the model, not measurements. A timeout
// may fire a sweep interval late (a quarter of the shortest timeout) in an
// event loop; a blocking send() gives up only after a whole SO_SNDTIMEO
// period without progress, and may start that period more than once.
//
// Stage01 serves one client at a time: there the "other client" is served
// only once the slow one has been dropped, which is exactly what its timeout
// buys it (Model::serial).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "model.hpp"

extern std::string g_server;

namespace model {

enum class Model { concurrent, serial };

using Seconds = std::chrono::duration<double>;

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return Seconds(std::chrono::steady_clock::now() - start).count();
}

// What `server --help` prints.
inline std::string help_text(const std::vector<std::string>& args) {
    std::string command = g_server;
    for (const std::string& a : args)
        command += " '" + a + "'";
    command += " --help";
    std::string text;
    if (FILE* out = popen(command.c_str(), "r")) {
        char buffer[4096];
        while (std::size_t n = fread(buffer, 1, sizeof buffer, out))
            text.append(buffer, n);
        pclose(out);
    }
    return text;
}

// The line of `text` that starts with `prefix`, or "".
inline std::string line_starting(const std::string& text, const std::string& prefix) {
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        if (text.compare(at, prefix.size(), prefix) == 0) return text.substr(at, end - at);
        at = end + 1;
    }
    return "";
}

// The three flags and their defaults are in --help.
inline void check_timeouts_in_help(const std::vector<std::string>& args) {
    std::string text = help_text(args);
    INFO(text);
    CHECK(line_starting(text, "  --request-timeout S").find("default 30") != std::string::npos);
    CHECK(line_starting(text, "  --idle-timeout S").find("default 60") != std::string::npos);
    CHECK(line_starting(text, "  --send-timeout S").find("default 30") != std::string::npos);
}

// True once the peer has closed (EOF) or reset the connection; false while it
// is open. Never blocks. Reads and drops what data has arrived.
inline bool peer_gone(int fd) {
    char buffer[4096];
    for (;;) {
        ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
}

// True once the connection was reset (or fully closed), without reading it:
// poll() with no events still reports POLLHUP and POLLERR.
inline bool reset_within(int fd, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, 0, 0};
        if (poll(&p, 1, 20) > 0 && (p.revents & (POLLHUP | POLLERR))) return true;
    }
    return false;
}

// (a) Slowloris: "ECHO slowloris..." one byte every 300 ms, never a LF. The
// server closes it about --request-timeout (1 s) after its first byte, though
// bytes keep coming, and meanwhile (serial: right after) another client is served.
inline void check_slowloris(const std::vector<std::string>& args, Model model) {
    ServerProcess server(g_server, with(args, {"--request-timeout", "1", "--idle-timeout", "10",
                                               "--send-timeout", "10"}));
    iolab::Fd slow = connect_to(server.port());
    iolab::Fd other = connect_to(server.port());
    REQUIRE(slow);
    REQUIRE(other);

    const std::string trickle = "ECHO slowloris, one byte at a time, never a line feed";
    auto start = std::chrono::steady_clock::now();
    std::optional<double> closed_after;
    bool other_served_early = false;
    for (std::size_t i = 0; i < trickle.size() && !closed_after; ++i) {
        if (send(slow.get(), &trickle[i], 1, MSG_NOSIGNAL) != 1) {
            closed_after = seconds_since(start);
            break;
        }
        if (i == 1) {
            if (model == Model::concurrent)
                CHECK(echo_works(other.get(), "served meanwhile", 2000ms));
            else
                REQUIRE(send_all(other.get(), "ECHO served after\n"));
        }
        if (model == Model::serial && readable_within(other.get(), 0ms)) other_served_early = true;
        if (readable_within(slow.get(), 300ms) && peer_gone(slow.get()))
            closed_after = seconds_since(start);
    }
    REQUIRE(closed_after.has_value());
    INFO("slowloris closed " << *closed_after << " s after its first byte");
    CHECK(*closed_after >= 0.9);
    CHECK(*closed_after <= 4.0);

    if (model == Model::serial) {
        CHECK_FALSE(other_served_early);  // one client at a time: the slow one held the server
        CHECK(recv_line(other.get(), 5000ms) == "served after\n");
    }
    CHECK(echo_works(other.get(), "still served"));
    CHECK(server.stop() == 0);
}

// (b) Idle: a client that says nothing is closed after about --idle-timeout
// (2 s); one with a request every 0.5 s for 3.5 s is not, and is closed
// about 2 s after its last one.
inline void check_idle(const std::vector<std::string>& args) {
    ServerProcess server(g_server, with(args, {"--idle-timeout", "2", "--request-timeout", "1",
                                               "--send-timeout", "1"}));
    {
        iolab::Fd silent = connect_to(server.port());
        REQUIRE(silent);
        auto start = std::chrono::steady_clock::now();
        REQUIRE(closed_by_peer(silent.get(), 10000ms));
        double after = seconds_since(start);
        INFO("silent client closed after " << after << " s");
        CHECK(after >= 1.8);
        CHECK(after <= 5.0);
    }

    iolab::Fd active = connect_to(server.port());
    REQUIRE(active);
    auto last_request = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {
        if (i > 0) std::this_thread::sleep_for(500ms);
        last_request = std::chrono::steady_clock::now();  // the server reads it after this
        REQUIRE(echo_works(active.get(), "request " + std::to_string(i), 2000ms));
    }
    REQUIRE(closed_by_peer(active.get(), 10000ms));
    double after = seconds_since(last_request);
    INFO("active client closed " << after << " s after its last request");
    CHECK(after >= 1.8);
    CHECK(after <= 5.0);
    CHECK(server.stop() == 0);
}

// A document root holding big.bin, 64 MiB (sparse: it costs no disk).
class SparseBigFileRoot : public TempTree {
public:
    static constexpr off_t size = off_t{64} << 20;
    SparseBigFileRoot() : TempTree("timeouts") { sparse_file("big.bin", size); }
    const std::string& dir() const { return path(); }
};

// (c) Send timeout: a client with a tiny receive window asks for 64 MiB and
// never reads. The server stalls, holds no more than its buffers meanwhile,
// and resets the connection about --send-timeout (1 s) later; others are
// served meanwhile (serial: once it is dropped).
inline void check_send_timeout(const std::vector<std::string>& args, Model model) {
    SparseBigFileRoot root;
    ServerProcess server(g_server, with(args, {"--root", root.dir(), "--send-timeout", "1",
                                               "--request-timeout", "10", "--idle-timeout", "10"}));
    {
        iolab::Fd warmup = connect_to(server.port());
        REQUIRE(echo_works(warmup.get(), "warm up"));
    }
    long rss_before = rss_kib(server.pid());

    iolab::Fd stalled = connect_with_small_window(server.port(), 4096);
    REQUIRE(stalled);
    REQUIRE(send_all(stalled.get(), "GET /big.bin\n"));
    auto start = std::chrono::steady_clock::now();
    iolab::Fd other = connect_to(server.port());
    REQUIRE(other);
    if (model == Model::concurrent) {
        CHECK(echo_works(other.get(), "not stalled", 2000ms));
    } else {
        REQUIRE(send_all(other.get(), "ECHO served after\n"));
    }

    std::this_thread::sleep_for(500ms);  // the server has filled the socket buffers by now
    long grown_kib = rss_kib(server.pid()) - rss_before;
    INFO("server RSS growth while stalled: " << grown_kib << " KiB");
    CHECK(grown_kib < 32 * 1024);  // far from the 64 MiB file

    REQUIRE(reset_within(stalled.get(), 10000ms));
    double after = seconds_since(start);
    INFO("stalled client dropped after " << after << " s");
    CHECK(after >= 0.8);
    CHECK(after <= 6.0);

    if (model == Model::serial) CHECK(recv_line(other.get(), 5000ms) == "served after\n");
    CHECK(echo_works(other.get(), "still served"));
    CHECK(server.stop() == 0);
}

// All of the above, as one stage's test cases run them.
inline void check_timeouts(const std::vector<std::string>& args, Model model) {
    SECTION("--help shows the timeouts and their defaults") {
        check_timeouts_in_help(args);
    }
    SECTION("slowloris is closed after --request-timeout, others are served") {
        check_slowloris(args, model);
    }
    SECTION("a silent client is closed after --idle-timeout, an active one is not") {
        check_idle(args);
    }
    SECTION("a client that stops reading is reset after --send-timeout") {
        check_send_timeout(args, model);
    }
}

}  // namespace model
