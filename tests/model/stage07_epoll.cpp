// stage07_epoll's model, in both trigger modes: thousands of connections at
// once, the interest list kept in step with the connections, and the same
// limits and throttling as select and poll. Edge-triggered mode is where a
// read or write that stops before EAGAIN loses an event for good, so every
// scenario runs with --trigger edge too.
#include "multiplexing.hpp"
#include "timeout_checks.hpp"

using namespace model;

namespace {

const std::vector<std::string> level{"--trigger", "level"};
const std::vector<std::string> edge{"--trigger", "edge"};

void check_interest_list(const std::vector<std::string>& args) {
    ServerProcess server(g_server, args);
    std::vector<iolab::Fd> clients = connect_many(server.port(), 100);
    REQUIRE(clients.size() == 100);
    for (iolab::Fd& client : clients)
        REQUIRE(echo_works(client.get(), "hi"));
    // One epoll instance, watching the listener and every client.
    CHECK(epoll_watch_counts(server.pid()) == std::vector<int>{101});
    clients.clear();
    // Closed connections leave the interest list.
    CHECK(eventually([&] { return epoll_watch_counts(server.pid()) == std::vector<int>{1}; }));
    CHECK(server.stop() == 0);
}

}  // namespace

TEST_CASE("epoll level-triggered: 5000 concurrent connections are all served") {
    check_many_concurrent(level, 5000);
}

TEST_CASE("epoll edge-triggered: 5000 concurrent connections are all served") {
    check_many_concurrent(edge, 5000);
}

TEST_CASE("epoll: the interest list follows the connections") {
    SECTION("level-triggered") {
        check_interest_list(level);
    }
    SECTION("edge-triggered") {
        check_interest_list(edge);
    }
}

TEST_CASE("epoll: out of descriptors, newcomers are refused and nothing spins") {
    SECTION("level-triggered") {
        check_out_of_descriptors(level);
    }
    SECTION("edge-triggered") {
        check_out_of_descriptors(edge);
    }
}

TEST_CASE("epoll: clients that do not read are throttled, others still served") {
    SECTION("level-triggered") {
        check_slow_readers(level);
    }
    SECTION("edge-triggered") {
        check_slow_readers(edge);
    }
}

TEST_CASE("epoll level-triggered: a downloader that keeps up does not starve the others") {
    check_fast_downloader_shares(level);
}

TEST_CASE("epoll: pipelined requests then end-of-input are all answered") {
    SECTION("level-triggered") {
        check_pipelined_then_eof(level);
    }
    SECTION("edge-triggered") {
        check_pipelined_then_eof(edge);
    }
}

TEST_CASE("epoll: timeouts close a slow, silent or non-reading client; others are served") {
    SECTION("level-triggered") {
        check_timeouts(level, Model::concurrent);
    }
    SECTION("edge-triggered") {
        check_timeouts(edge, Model::concurrent);
    }
}
