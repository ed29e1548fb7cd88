// Model tests for stage02_fork_per_conn: a process per connection.
//
// What the model promises beyond the protocol: each client has its own
// process; the parent keeps no copy of a client's socket; every child that
// exits is reaped (no zombies); and a stop reaches the children too.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>
#include <vector>

#include "model.hpp"
#include "timeout_checks.hpp"

extern std::string g_server;

using namespace model;

namespace {

bool gone(pid_t pid) {
    return ::kill(pid, 0) < 0 && errno == ESRCH;
}

}  // namespace

TEST_CASE("stage02: each client gets its own child, and the parent keeps no copy of its socket",
          "[fork]") {
    ServerProcess server(g_server, {});
    int baseline = own_open_fds(server.pid());

    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
        REQUIRE(echo_works(clients.back().get(), "client " + std::to_string(i)));
    }
    Children children = children_of(server.pid());
    CHECK(children.total == 3);
    CHECK(children.zombies == 0);
    // The parent closes its copy of every accepted socket right after fork()
    // (the child may answer first: give the parent a moment).
    CHECK(eventually([&] { return own_open_fds(server.pid()) == baseline; }));
}

TEST_CASE("stage02: after 200 sequential and 50 concurrent connections, no zombie and no leaked fd",
          "[fork][zombies]") {
    ServerProcess server(g_server, {});
    int baseline = own_open_fds(server.pid());

    for (int i = 0; i < 200; ++i) {
        iolab::Fd client = connect_to(server.port());
        REQUIRE(client);
        REQUIRE(echo_works(client.get(), "sequential " + std::to_string(i)));
        if (i % 2 == 0) {  // half say QUIT, half just close
            REQUIRE(send_all(client.get(), "QUIT\n"));
            REQUIRE(recv_line(client.get()) == "BYE\n");
        }
    }
    // The last children may still be exiting, or waiting to be reaped, when
    // the next clients arrive: the count of 50 below must not include them.
    CHECK(eventually([&] { return children_of(server.pid()).total == 0; }));

    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 50; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
    }
    for (int i = 0; i < 50; ++i)
        REQUIRE(echo_works(clients[i].get(), "concurrent " + std::to_string(i)));
    CHECK(children_of(server.pid()).total == 50);
    clients.clear();  // all 50 leave at once: a burst of SIGCHLDs

    // Children exit as their clients leave; give the reaping a moment.
    CHECK(eventually([&] { return children_of(server.pid()).total == 0; }));
    Children left = children_of(server.pid());
    INFO("children left: " << left.total << ", of which zombies: " << left.zombies);
    CHECK(left.zombies == 0);
    CHECK(left.total == 0);
    CHECK(eventually([&] { return own_open_fds(server.pid()) == baseline; }));
    CHECK(own_open_fds(server.pid()) == baseline);

    // And it still serves.
    iolab::Fd client = connect_to(server.port());
    REQUIRE(client);
    CHECK(echo_works(client.get(), "still here"));
}

TEST_CASE("stage02: a child that dies ends its connection only, and is reaped", "[fork][zombies]") {
    ServerProcess server(g_server, {});
    iolab::Fd victim = connect_to(server.port());
    REQUIRE(victim);
    REQUIRE(echo_works(victim.get(), "victim"));
    std::vector<pid_t> children = child_pids(server.pid());
    REQUIRE(children.size() == 1);  // the victim's own process
    iolab::Fd bystander = connect_to(server.port());
    REQUIRE(bystander);
    REQUIRE(echo_works(bystander.get(), "bystander"));

    // kill -9 leaves the child no chance to shut its socket down: the
    // connection ends only because no other process holds a copy of it (the
    // parent closed its own).
    REQUIRE(::kill(children[0], SIGKILL) == 0);
    CHECK(closed_by_peer(victim.get()));
    CHECK(eventually([&] { return children_of(server.pid()).total == 1; }));
    CHECK(children_of(server.pid()).zombies == 0);
    CHECK(echo_works(bystander.get(), "unharmed"));
}

TEST_CASE("stage02: SIGTERM stops the parent and every child, and the summary counts their work",
          "[fork][lifecycle]") {
    ServerProcess server(g_server, {});
    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
        REQUIRE(echo_works(clients.back().get(), "before the stop"));  // one request each
    }
    std::vector<pid_t> children = child_pids(server.pid());
    REQUIRE(children.size() == 3);

    CHECK(server.stop() == 0);
    for (pid_t child : children)
        CHECK(eventually([&] { return gone(child); }));
    for (iolab::Fd& client : clients)
        CHECK(closed_by_peer(client.get()));
    // The children counted into the parent's summary (shared counters).
    std::string summary = server.read_line(5s);
    INFO("summary: " << summary);
    CHECK(summary.find("3 connections, 3 requests") != std::string::npos);
}

TEST_CASE("stage02: timeouts end a slow, silent or non-reading client's connection",
          "[fork][timeouts]") {
    check_timeouts({}, Model::concurrent);
}

TEST_CASE("stage02: a silent client's child exits after --idle-timeout and is reaped",
          "[fork][timeouts]") {
    ServerProcess server(g_server, {"--idle-timeout", "2"});
    iolab::Fd silent = connect_to(server.port());
    REQUIRE(silent);
    CHECK(eventually([&] { return children_of(server.pid()).total == 1; }, 3s));
    CHECK(closed_by_peer(silent.get(), 5s));
    CHECK(eventually([&] { return children_of(server.pid()).total == 0; }, 5s));
}
