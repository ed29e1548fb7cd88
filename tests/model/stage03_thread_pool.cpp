// Model tests for stage03_thread_pool: fixed workers fed by a bounded queue.
//
// What the model promises beyond the protocol: exactly --threads workers,
// however many clients come; a client beyond them waits in the queue (it is
// accepted, but nobody reads it) until a worker is free; a client beyond the
// queue is refused at once with ERR 503 busy; a stop wakes every worker,
// even one blocked in read() on an idle client.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "model.hpp"
#include "timeout_checks.hpp"

extern std::string g_server;

using namespace model;

namespace {

int workers_of(pid_t pid) {
    int count = 0;
    for (const std::string& name : thread_names(pid))
        if (name == "worker") ++count;
    return count;
}

}  // namespace

TEST_CASE("stage03: the pool has --threads workers, started once, whatever the load",
          "[pool][threads]") {
    ServerProcess server(g_server, {"--threads", "3"});
    // (A thread names itself once it runs: give the workers a moment to start.)
    CHECK(eventually([&] { return workers_of(server.pid()) == 3; }));
    CHECK(thread_count(server.pid()) ==
          3 + 1 + runtime_threads);  // the workers + main (the acceptor)

    // Connections do not create threads: 3 busy clients, 2 queued ones.
    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
    }
    for (int i = 0; i < 3; ++i)
        REQUIRE(echo_works(clients[i].get(), "busy"));
    CHECK(workers_of(server.pid()) == 3);
    CHECK(thread_count(server.pid()) == 3 + 1 + runtime_threads);
}

TEST_CASE("stage03: N workers serve N clients; the next waits in the queue; past the queue, 503",
          "[pool][queue]") {
    ServerProcess server(g_server, {"--threads", "2", "--queue", "1"});

    // Two long-lived clients occupy both workers.
    iolab::Fd first = connect_to(server.port());
    iolab::Fd second = connect_to(server.port());
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(echo_works(first.get(), "first"));
    REQUIRE(echo_works(second.get(), "second"));

    // The third is accepted into the queue, where no one reads its request.
    iolab::Fd third = connect_to(server.port());
    REQUIRE(third);
    REQUIRE(send_all(third.get(), "ECHO third\n"));
    CHECK(recv_line(third.get(), 500ms).empty());

    // The queue (capacity 1) is full: the fourth is refused at once, and closed.
    iolab::Fd fourth = connect_to(server.port());
    REQUIRE(fourth);
    CHECK(recv_line(fourth.get()) == "ERR 503 busy\n");
    CHECK(closed_by_peer(fourth.get()));

    // The clients being served are not disturbed by the refusal.
    CHECK(echo_works(first.get(), "first again"));

    // When the first leaves, its worker takes the third from the queue, and
    // the request it sent long ago is answered.
    REQUIRE(send_all(first.get(), "QUIT\n"));
    CHECK(recv_line(first.get()) == "BYE\n");
    CHECK(recv_line(third.get()) == "third\n");
    CHECK(echo_works(third.get(), "third again"));
    CHECK(echo_works(second.get(), "second again"));

    // With the queue empty again, a newcomer is queued, not refused.
    iolab::Fd fifth = connect_to(server.port());
    REQUIRE(fifth);
    REQUIRE(send_all(fifth.get(), "ECHO fifth\n"));
    CHECK(recv_line(fifth.get(), 500ms).empty());
    second.reset();  // the second leaves without a word: its worker moves on
    CHECK(recv_line(fifth.get()) == "fifth\n");
}

TEST_CASE("stage03: SIGTERM wakes workers blocked on idle clients and exits 0",
          "[pool][lifecycle]") {
    ServerProcess server(g_server, {"--threads", "2", "--queue", "4"});
    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 4; ++i) {  // 2 served (then idle, in read()), 2 queued
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
    }
    REQUIRE(echo_works(clients[0].get(), "idle soon"));
    REQUIRE(echo_works(clients[1].get(), "idle soon"));
    REQUIRE(send_all(clients[1].get(), "ECHO partial request, no LF"));

    CHECK(server.stop(5s) == 0);
    for (iolab::Fd& client : clients)
        CHECK(closed_by_peer(client.get()));
    std::string summary = server.read_line(5s);
    INFO("summary: " << summary);
    CHECK(summary.starts_with("stage03_thread_pool: 4 connections"));
}

TEST_CASE("stage03: timeouts end a slow, silent or non-reading client's connection",
          "[pool][timeouts]") {
    check_timeouts({}, Model::concurrent);
}

TEST_CASE("stage03: a silent client frees its worker after --idle-timeout", "[pool][timeouts]") {
    ServerProcess server(g_server, {"--threads", "1", "--queue", "1", "--idle-timeout", "1"});
    iolab::Fd silent = connect_to(server.port());
    REQUIRE(silent);
    std::this_thread::sleep_for(200ms);  // the only worker takes it, and waits in read()
    iolab::Fd queued = connect_to(server.port());
    REQUIRE(queued);
    REQUIRE(send_all(queued.get(), "ECHO queued\n"));
    CHECK(recv_line(queued.get(), 300ms).empty());  // nobody reads it yet
    CHECK(closed_by_peer(silent.get(), 5s));
    CHECK(recv_line(queued.get(), 5s) == "queued\n");  // the freed worker took it
}
