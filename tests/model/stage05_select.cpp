// stage05_select's model: select() watches descriptors 0..FD_SETSIZE-1 only.
// A client whose socket gets a number past that is refused (ERR 503 busy)
// and closed, never handed to FD_SET (which would write past the fd_set);
// everyone below the wall keeps being served.
#include <sys/select.h>

#include "multiplexing.hpp"
#include "timeout_checks.hpp"

using namespace model;

TEST_CASE("select: the clients past FD_SETSIZE are refused, the others served") {
    ServerProcess server(g_server, {});
    constexpr std::size_t count = 1100;  // the server needs one descriptor each: past 1024
    std::vector<iolab::Fd> clients = connect_many(server.port(), count);
    REQUIRE(clients.size() == count);

    // Accepts happen in connection order, and descriptor numbers are handed
    // out lowest first: the first ~1000 clients get numbers below
    // FD_SETSIZE, the rest above. Once the last client has its refusal,
    // every earlier one has been accepted or refused.
    REQUIRE(readable_within(clients.back().get(), 20s));
    std::size_t served = served_before_refusals(clients);
    INFO("served " << served << " of " << count);
    CHECK(served >= 1000);
    CHECK(served < FD_SETSIZE);

    CHECK(refused_cleanly(clients, served) == count - served);

    std::size_t answered = 0;
    Budget budget(60s);
    for (std::size_t i = 0; i < served; ++i) {
        if (echo_works(clients[i].get(), "below the wall " + std::to_string(i), budget.left()))
            ++answered;
        else
            budget.spend();
    }
    CHECK(answered == served);

    // At the wall the server neither spins nor forgets its old clients.
    CHECK(cpu_used_during(server.pid(), 1000ms) < 0.25);
    CHECK(echo_works(clients.front().get(), "the first one, afterwards"));

    // Below-the-wall numbers freed by leaving clients are given to newcomers.
    REQUIRE(served > 10);
    clients.resize(served - 10);
    CHECK(newcomer_served(server.port()));
    clients.clear();
    CHECK(server.stop() == 0);
}

TEST_CASE("select: out of descriptors, newcomers are refused and nothing spins") {
    check_out_of_descriptors({});
}

TEST_CASE("select: clients that do not read are throttled, others still served") {
    check_slow_readers({});
}

TEST_CASE("select: a downloader that keeps up does not starve the others") {
    check_fast_downloader_shares({});
}

TEST_CASE("select: pipelined requests then end-of-input are all answered") {
    check_pipelined_then_eof({});
}

TEST_CASE("select: timeouts close a slow, silent or non-reading client; others are served") {
    check_timeouts({}, Model::concurrent);
}
