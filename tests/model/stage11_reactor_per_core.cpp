// stage11_reactor_per_core's model: --threads event loops, each a thread with
// its own epoll instance and its own SO_REUSEPORT listener on the one port.
//
// What the model promises beyond the protocol: exactly N loop threads (plus
// main, which only waits), N listening sockets on one port, N epoll
// instances; connections spread over the loops by the kernel and each served
// by one of them; a stop wakes and joins every loop, even loops asleep with
// no timeout to wake them; and, since the loops share one descriptor table,
// running out of descriptors refuses newcomers cleanly in every loop without
// leaving one spinning. The single-loop promises (throttling, pipelining,
// timeouts, thousands of connections) are stage07's, checked here with two
// loops by the scenarios shared with stages 05-07.
#include <sched.h>

#include <algorithm>
#include <numeric>

#include "multiplexing.hpp"
#include "timeout_checks.hpp"

using namespace model;

namespace {

const std::vector<std::string> two_loops{"--threads", "2"};

int loop_threads(pid_t pid) {
    std::vector<std::string> names = thread_names(pid);
    return static_cast<int>(std::count_if(
        names.begin(), names.end(), [](const std::string& n) { return n.starts_with("loop"); }));
}

int cores_available() {
    cpu_set_t cpus;
    return sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
}

void check_shape(const ServerProcess& server, int loops) {
    CHECK(eventually([&] { return loop_threads(server.pid()) == loops; }));
    CHECK(thread_count(server.pid()) == loops + 1 + runtime_threads);  // the loops + main
    CHECK(listening_sockets(server.port()) == loops);
    CHECK(epoll_watch_counts(server.pid()) == std::vector<int>(loops, 1));  // each: its listener
}

}  // namespace

TEST_CASE("stage11: --threads N makes N loops, N listeners on one port, N epoll instances",
          "[loops][shape]") {
    for (int loops : {1, 2, 3}) {
        INFO("--threads " << loops);
        ServerProcess server(g_server, {"--threads", std::to_string(loops)});
        check_shape(server, loops);
        iolab::Fd client = connect_to(server.port());
        CHECK(echo_works(client.get(), "hello"));
        CHECK(server.stop() == 0);
    }
}

TEST_CASE("stage11: --threads defaults to the cores the process may run on", "[loops][shape]") {
    {
        ServerProcess server(g_server, {});
        check_shape(server, cores_available());
        CHECK(server.stop() == 0);
    }
    // Like `taskset -c CPU`: the server inherits a one-core affinity mask.
    cpu_set_t saved, one;
    REQUIRE(sched_getaffinity(0, sizeof saved, &saved) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &saved))
        ++first;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    std::optional<ServerProcess> pinned;
    try {
        pinned.emplace(g_server, std::vector<std::string>{});
    } catch (...) {
        sched_setaffinity(0, sizeof saved, &saved);
        throw;
    }
    sched_setaffinity(0, sizeof saved, &saved);
    check_shape(*pinned, 1);
    CHECK(pinned->stop() == 0);
}

TEST_CASE("stage11: 1000 concurrent connections are spread over the loops, all served exactly",
          "[loops][spread]") {
    ServerProcess server(g_server, two_loops);
    constexpr std::size_t count = 1000;
    std::vector<iolab::Fd> clients = connect_many(server.port(), count);
    REQUIRE(clients.size() == count);
    EchoCount echoed = echo_all_at_once(clients);
    CHECK(echoed.sent == count);
    CHECK(echoed.answered == count);

    // Each loop's epoll instance watches its listener and the connections
    // the kernel gave that listener: both got some (a hash of 1000 distinct
    // source ports never sends them all one way), and no connection is in two.
    std::vector<int> watched = epoll_watch_counts(server.pid());
    INFO("descriptors watched per loop (listener included): " << watched[0] << ", "
                                                              << watched.back());
    REQUIRE(watched.size() == 2);
    CHECK(watched[0] > 1);
    CHECK(watched[0] + watched[1] == static_cast<int>(count) + 2);

    // The loops sleep when nobody talks.
    CHECK(cpu_used_during(server.pid(), 1000ms) < 0.25);
    clients.clear();
    CHECK(eventually([&] { return epoll_watch_counts(server.pid()) == std::vector<int>{1, 1}; }));
    CHECK(server.stop() == 0);
    std::string summary = server.read_line(5s);
    INFO("summary: " << summary);
    CHECK(summary.starts_with("stage11_reactor_per_core: 1000 connections, 1000 requests"));
}

TEST_CASE("stage11: a stop wakes and joins every loop, even with no timeout to wake it",
          "[loops][lifecycle]") {
    // With every timeout off epoll_wait() sleeps for ever (-1): only the
    // shutdown of each loop's listener by the signal handler can wake it.
    ServerProcess server(g_server, {"--threads", "3", "--idle-timeout", "0", "--request-timeout",
                                    "0", "--send-timeout", "0"});
    std::vector<iolab::Fd> clients = connect_many(server.port(), 60);
    REQUIRE(clients.size() == 60);
    for (iolab::Fd& client : clients)
        REQUIRE(echo_works(client.get(), "then idle"));
    REQUIRE(send_all(clients[0].get(), "ECHO partial request, no LF"));
    std::this_thread::sleep_for(200ms);  // every loop back in epoll_wait()

    CHECK(server.stop(5s) == 0);
    for (iolab::Fd& client : clients)
        CHECK(closed_by_peer(client.get()));
    std::string summary = server.read_line(5s);
    INFO("summary: " << summary);
    CHECK(summary.starts_with("stage11_reactor_per_core: 60 connections, 60 requests"));
}

TEST_CASE("stage11: out of descriptors, every loop refuses newcomers cleanly; none spins",
          "[loops][descriptors]") {
    std::optional<ServerProcess> server;
    {
        ScopedLimit limit(RLIMIT_NOFILE, 64);  // the process's: both loops share it
        server.emplace(g_server, two_loops);
    }
    constexpr std::size_t count = 150;
    std::vector<iolab::Fd> clients = connect_many(server->port(), count);
    REQUIRE(clients.size() == count);
    std::size_t sent = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (send_all(clients[i].get(), "ECHO storm " + std::to_string(i) + "\n")) ++sent;
    REQUIRE(sent == count);

    // Each one is answered at once, whichever loop the kernel gave it to:
    // served, or refused with ERR 503 busy and closed.
    std::vector<std::size_t> served;
    std::size_t refused = 0;
    for (std::size_t i = 0; i < count; ++i) {
        std::string reply = recv_line(clients[i].get(), 5s);
        if (reply == "storm " + std::to_string(i) + "\n") {
            served.push_back(i);
        } else {
            INFO("client " << i << " got '" << reply << "'");
            CHECK(reply == "ERR 503 busy\n");
            CHECK(closed_by_peer(clients[i].get(), 2s));
            ++refused;
        }
    }
    INFO(served.size() << " served, " << refused << " refused");
    CHECK(served.size() >= 20);
    CHECK(served.size() < 64);
    CHECK(refused == count - served.size());
    CHECK(cpu_used_during(server->pid(), 1000ms) < 0.25);
    for (std::size_t i : served)
        CHECK(echo_works(clients[i].get(), "still here"));

    // The refused leave, then twenty of the served: newcomers are served
    // again, on whichever loop they land (retried: each loop frees its share).
    for (std::size_t i = 0, dropped = 0; i < count; ++i) {
        bool was_served = std::find(served.begin(), served.end(), i) != served.end();
        if (!was_served || dropped++ < 20) clients[i].reset();
    }
    int newcomers_served = 0;
    for (int attempt = 0; attempt < 200 && newcomers_served < 10; ++attempt) {
        iolab::Fd late = connect_to(server->port());
        if (late && echo_works(late.get(), "late", 2s))
            ++newcomers_served;
        else
            std::this_thread::sleep_for(20ms);
    }
    CHECK(newcomers_served == 10);
    clients.clear();
    CHECK(server->stop() == 0);
}

TEST_CASE("stage11: vanishing clients on every loop leave no descriptor behind",
          "[loops][resources]") {
    BigFileRoot root;
    ServerProcess server(g_server, with(two_loops, {"--root", root.dir()}));
    {
        iolab::Fd warm_up = connect_to(server.port());
        REQUIRE(echo_works(warm_up.get(), "warm up"));
    }
    // At rest a loop watches only its listener.
    REQUIRE(eventually([&] { return epoll_watch_counts(server.pid()) == std::vector<int>{1, 1}; }));
    int fds_at_rest = own_open_fds(server.pid());

    for (int i = 0; i < 40; ++i) {
        iolab::Fd client = connect_to(server.port());
        REQUIRE(client);
        REQUIRE(send_all(client.get(), "GET /big.bin\n"));
        if (i % 2 == 0) {
            CHECK(recv_exactly(client.get(), 64 * 1024).size() == 64 * 1024);
            linger reset{1, 0};  // the close sends a reset mid-body
            setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
    }
    CHECK(eventually([&] {
        return epoll_watch_counts(server.pid()) == std::vector<int>{1, 1} &&
               own_open_fds(server.pid()) == fds_at_rest;
    }));
    INFO("descriptors at rest: " << fds_at_rest << ", now " << own_open_fds(server.pid()));
    CHECK(own_open_fds(server.pid()) == fds_at_rest);
    CHECK(server.stop() == 0);
}

TEST_CASE("stage11: 5000 concurrent connections on two loops are all served", "[stage07]") {
    check_many_concurrent(two_loops, 5000);
}

TEST_CASE("stage11: clients that do not read are throttled, others still served", "[stage07]") {
    check_slow_readers(two_loops);
}

TEST_CASE("stage11: a downloader that keeps up does not starve the others on its loop",
          "[stage07]") {
    check_fast_downloader_shares({"--threads", "1"});  // one loop: both clients on it
}

TEST_CASE("stage11: pipelined requests then end-of-input are all answered", "[stage07]") {
    check_pipelined_then_eof(two_loops);
}

TEST_CASE("stage11: timeouts close a slow, silent or non-reading client; others are served",
          "[stage07][timeouts]") {
    check_timeouts(two_loops, Model::concurrent);
}
