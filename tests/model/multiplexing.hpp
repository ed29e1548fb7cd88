// Scenarios shared by the model tests of the multiplexing stages (05 select,
// 06 poll, 07 epoll): one thread serving many nonblocking sockets makes the
// same promises whatever it waits with, so each stage runs the same checks,
// given the server arguments to run them with (e.g. --trigger edge).
#pragma once

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "support.hpp"

extern std::string g_server;

namespace model {

// A document root in a fresh temporary directory holding big.bin (1 MiB).
class BigFileRoot {
public:
    static constexpr std::size_t size = 1024 * 1024;
    BigFileRoot() {
        char pattern[] = "/tmp/iolab-model-XXXXXX";
        if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp");
        dir_ = pattern;
        std::ofstream big(dir_ + "/big.bin", std::ios::binary);
        big << std::string(size, 'b');
    }
    ~BigFileRoot() {
        std::remove((dir_ + "/big.bin").c_str());
        rmdir(dir_.c_str());
    }
    BigFileRoot(const BigFileRoot&) = delete;
    BigFileRoot& operator=(const BigFileRoot&) = delete;
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
};

inline std::vector<std::string> with(std::vector<std::string> args,
                                     std::initializer_list<std::string> more) {
    args.insert(args.end(), more);
    return args;
}

// `count` connections open at the same time, each served while all are open;
// and a server holding them all does not spin while they are idle.
inline void check_many_concurrent(const std::vector<std::string>& args, std::size_t count) {
    ServerProcess server(g_server, args);
    std::vector<iolab::Fd> clients = connect_many(server.port(), count);
    REQUIRE(clients.size() == count);

    // Everyone sends before anyone reads: all requests are in the server's hands at once.
    std::size_t sent = 0, answered = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (send_all(clients[i].get(), "ECHO client " + std::to_string(i) + "\n")) ++sent;
    for (std::size_t i = 0; i < count; ++i)
        if (recv_line(clients[i].get()) == "client " + std::to_string(i) + "\n") ++answered;
    CHECK(sent == count);
    CHECK(answered == count);
    CHECK(own_open_fds(server.pid()) >= static_cast<int>(count));

    CHECK(cpu_used_during(server.pid(), 1000ms) < 0.25);
    // The first and the last still answer a second request.
    CHECK(echo_works(clients.front().get(), "first again"));
    CHECK(echo_works(clients.back().get(), "last again"));
    clients.clear();
    CHECK(server.stop() == 0);
}

// Run out of descriptors (RLIMIT_NOFILE lowered to 64 for the server): the
// newcomers get `ERR 503 busy`, the clients already in are still served, the
// server does not spin, and once clients leave a newcomer is served again.
inline void check_out_of_descriptors(const std::vector<std::string>& args) {
    std::optional<ServerProcess> server;
    {
        ScopedFdLimit limit(64);
        server.emplace(g_server, args);
    }
    constexpr std::size_t count = 100;
    std::vector<iolab::Fd> clients = connect_many(server->port(), count);
    REQUIRE(clients.size() == count);

    // Connections are accepted in the order they were made: once the last
    // one has its answer, every earlier one has been accepted or refused.
    REQUIRE(readable_within(clients.back().get(), 10s));
    std::size_t served = 0;
    while (served < count && !readable_within(clients[served].get(), 0ms))
        ++served;
    CHECK(served >= 30);
    CHECK(served < 64);

    std::size_t refused_cleanly = 0;
    for (std::size_t i = served; i < count; ++i)
        if (recv_line(clients[i].get(), 2s) == "ERR 503 busy\n" &&
            closed_by_peer(clients[i].get(), 2s))
            ++refused_cleanly;
    CHECK(refused_cleanly == count - served);

    std::size_t answered = 0;
    for (std::size_t i = 0; i < served; ++i)
        if (echo_works(clients[i].get(), "still here " + std::to_string(i))) ++answered;
    CHECK(answered == served);
    CHECK(cpu_used_during(server->pid(), 1000ms) < 0.25);

    // Ten clients leave; a newcomer gets in (retried: the server notices the
    // departures on its own schedule).
    clients.resize(served > 10 ? served - 10 : 0);
    bool newcomer_served = false;
    for (int attempt = 0; attempt < 100 && !newcomer_served; ++attempt) {
        iolab::Fd late = connect_to(server->port());
        newcomer_served = late && echo_works(late.get(), "late", 2s);
        if (!newcomer_served) std::this_thread::sleep_for(50ms);
    }
    CHECK(newcomer_served);
    CHECK(echo_works(clients.front().get(), "first again"));
    clients.clear();
    CHECK(server->stop() == 0);
}

// Clients that do not read their replies are throttled, not buffered for:
// 1. a flood of pipelined ECHOs: the server stops reading it (the flood
//    stalls after the kernel buffers fill), its memory stays bounded;
// 2. GETs of a 1 MiB file then end-of-input, with a tiny receive window:
//    the end-of-input waits unread behind the throttled requests, which
//    must not make the server spin (a level-triggered EPOLLRDHUP would);
// meanwhile others are served; and the throttled clients, once they read,
// get every reply in full.
inline void check_slow_readers(const std::vector<std::string>& args) {
    BigFileRoot root;
    ServerProcess server(g_server, with(args, {"--root", root.dir()}));
    iolab::Fd warmup = connect_to(server.port());
    REQUIRE(echo_works(warmup.get(), "warm up"));
    long rss_before = rss_kib(server.pid());

    // 1. The flood: 4 KiB lines, sent without blocking until nothing more goes.
    iolab::Fd flood = connect_to(server.port());
    REQUIRE(flood);
    const std::string line = "ECHO " + std::string(4090, 'x') + "\n";
    std::size_t flooded = 0;
    constexpr std::size_t flood_cap = std::size_t{256} << 20;
    auto last_progress = std::chrono::steady_clock::now();
    while (flooded < flood_cap && std::chrono::steady_clock::now() - last_progress < 500ms) {
        std::size_t at = flooded % line.size();
        ssize_t n =
            send(flood.get(), line.data() + at, line.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            flooded += static_cast<std::size_t>(n);
            last_progress = std::chrono::steady_clock::now();
        } else {
            std::this_thread::sleep_for(5ms);
        }
    }
    INFO("flood bytes accepted before stalling: " << flooded);
    CHECK(flooded < flood_cap / 2);  // without throttling all 256 MiB would pass

    // 2. GETs and end-of-input from a client with a tiny receive window.
    iolab::Fd getter = connect_with_small_window(server.port());
    REQUIRE(getter);
    constexpr int gets = 40;  // more than an Outbox queues (16)
    std::string requests;
    for (int i = 0; i < gets; ++i)
        requests += "GET /big.bin\n";
    REQUIRE(send_all(getter.get(), requests));
    shutdown(getter.get(), SHUT_WR);
    std::this_thread::sleep_for(300ms);

    // Meanwhile: others are served, nothing spins, memory is bounded.
    iolab::Fd other = connect_to(server.port());
    CHECK(echo_works(other.get(), "not starved"));
    CHECK(echo_works(warmup.get(), "warm up again"));
    CHECK(cpu_used_during(server.pid(), 1000ms) < 0.25);
    long grown_kib = rss_kib(server.pid()) - rss_before;
    INFO("server RSS growth: " << grown_kib << " KiB");
    CHECK(grown_kib < 64 * 1024);

    // The throttled clients read at last, and get everything, in order.
    std::string got = recv_until_eof(getter.get(), 30s);
    std::string expected_reply = "OK " + std::to_string(BigFileRoot::size) + "\n";
    CHECK(got.size() == gets * (expected_reply.size() + BigFileRoot::size));
    CHECK(got.starts_with(expected_reply));
    shutdown(flood.get(), SHUT_WR);
    std::size_t complete_lines = flooded / line.size();
    std::string echoed = recv_until_eof(flood.get(), 30s);
    CHECK(echoed.size() >= complete_lines * (line.size() - 5));
    CHECK(echoed.find_first_not_of("x\n") >= complete_lines * (line.size() - 5));
    CHECK(server.stop() == 0);
}

// More pipelined requests than an Outbox queues (16), then end-of-input, in
// one write: every request is answered, in order, before the server closes.
// (The outbox fills and drains within one advance(); no new event comes for
// the requests left in the session, and the EOF must not cut them off.)
inline void check_pipelined_then_eof(const std::vector<std::string>& args) {
    ServerProcess server(g_server, args);
    iolab::Fd client = connect_to(server.port());
    REQUIRE(client);
    std::string requests, expected;
    for (int i = 0; i < 100; ++i) {
        requests += "ECHO pipelined " + std::to_string(i) + "\n";
        expected += "pipelined " + std::to_string(i) + "\n";
    }
    REQUIRE(send_all(client.get(), requests));
    shutdown(client.get(), SHUT_WR);
    CHECK(recv_until_eof(client.get(), 10s) == expected);
    CHECK(server.stop() == 0);
}

}  // namespace model
