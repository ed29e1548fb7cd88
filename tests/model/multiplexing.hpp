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

#include "fairness.hpp"
#include "model.hpp"

extern std::string g_server;

namespace model {

// A document root in a fresh temporary directory holding big.bin (1 MiB).
class BigFileRoot : public TempTree {
public:
    static constexpr std::size_t size = 1024 * 1024;
    BigFileRoot() : TempTree("model") { file("big.bin", std::string(size, 'b')); }
    const std::string& dir() const { return path(); }
};

// Every client sends an ECHO before any reads its reply, so all the requests
// are in the server's hands at once; then each reads. How many were sent, and
// how many came back right.
struct EchoCount {
    std::size_t sent = 0, answered = 0;
};
inline EchoCount echo_all_at_once(const std::vector<iolab::Fd>& clients) {
    EchoCount count;
    for (std::size_t i = 0; i < clients.size(); ++i)
        if (send_all(clients[i].get(), "ECHO client " + std::to_string(i) + "\n")) ++count.sent;
    Budget budget(60s);
    for (std::size_t i = 0; i < clients.size(); ++i) {
        if (recv_line(clients[i].get(), budget.left()) == "client " + std::to_string(i) + "\n")
            ++count.answered;
        else
            budget.spend();
    }
    return count;
}

// For clients connected one after the other to a server that runs out of
// room partway, once the last one has its answer (connections are accepted
// in the order they were made, so every earlier one has been accepted or
// refused by then): how many at the front were taken in, their reply still
// to come, before the refusals began.
inline std::size_t served_before_refusals(const std::vector<iolab::Fd>& clients) {
    std::size_t served = 0;
    while (served < clients.size() && !readable_within(clients[served].get(), 0ms))
        ++served;
    return served;
}

// How many of clients[from...] were refused cleanly: ERR 503 busy, then closed.
inline std::size_t refused_cleanly(const std::vector<iolab::Fd>& clients, std::size_t from) {
    std::size_t refused = 0;
    Budget budget(30s);
    for (std::size_t i = from; i < clients.size(); ++i) {
        if (recv_line(clients[i].get(), budget.left(2s)) == "ERR 503 busy\n" &&
            closed_by_peer(clients[i].get(), budget.left(2s)))
            ++refused;
        else
            budget.spend();
    }
    return refused;
}

// Whether a newcomer gets served, tried up to 100 times: the server notices
// that other clients left on its own schedule.
inline bool newcomer_served(std::uint16_t port) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        iolab::Fd late = connect_to(port);
        if (late && echo_works(late.get(), "late", 2s)) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// `count` connections open at the same time, each served while all are open;
// and a server holding them all does not spin while they are idle.
inline void check_many_concurrent(const std::vector<std::string>& args, std::size_t count) {
    ServerProcess server(g_server, args);
    std::vector<iolab::Fd> clients = connect_many(server.port(), count);
    REQUIRE(clients.size() == count);

    EchoCount echoed = echo_all_at_once(clients);
    CHECK(echoed.sent == count);
    CHECK(echoed.answered == count);
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
        ScopedLimit limit(RLIMIT_NOFILE, 64);
        server.emplace(g_server, args);
    }
    constexpr std::size_t count = 100;
    std::vector<iolab::Fd> clients = connect_many(server->port(), count);
    REQUIRE(clients.size() == count);

    REQUIRE(readable_within(clients.back().get(), 10s));
    std::size_t served = served_before_refusals(clients);
    CHECK(served >= 30);
    CHECK(served < 64);
    CHECK(refused_cleanly(clients, served) == count - served);

    std::size_t answered = 0;
    Budget budget(30s);
    for (std::size_t i = 0; i < served; ++i) {
        if (echo_works(clients[i].get(), "still here " + std::to_string(i), budget.left()))
            ++answered;
        else
            budget.spend();
    }
    CHECK(answered == served);
    CHECK(cpu_used_during(server->pid(), 1000ms) < 0.25);

    // Ten clients leave; a newcomer gets in.
    clients.resize(served > 10 ? served - 10 : 0);
    CHECK(newcomer_served(server->port()));
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
