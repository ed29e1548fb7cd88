// Model tests for stage04_nonblocking_poll: one thread busy-polling
// nonblocking sockets.
//
// What the model promises beyond the protocol: one thread serves many
// clients at once; a client that does not read its replies holds its own
// bytes (the short write is resumed later) and stalls no one else; a stop is
// noticed by the loop. What it costs, CPU while idle, is measured and
// printed here, never asserted: performance is shown, not tested.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "model.hpp"
#include "timeout_checks.hpp"

extern std::string g_server;

using namespace model;

namespace {

// A document root with one 32 MiB file: far more than the socket buffers
// hold, so sending it to a client that does not read must stop half-way.
class BigFileRoot : public TempTree {
public:
    BigFileRoot() : TempTree("stage04") {
        content_.resize(32 * 1024 * 1024);
        for (std::size_t i = 0; i < content_.size(); ++i)
            content_[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
        file("big.bin", content_);
    }
    const std::string& content() const { return content_; }

private:
    std::string content_;
};

}  // namespace

TEST_CASE("stage04: one thread serves a hundred clients at once", "[nonblocking]") {
    ServerProcess server(g_server, {});
    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 100; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
    }
    // Every client is connected before any is answered: in a blocking,
    // one-thread server the first would hold up the 99 others.
    for (int round = 0; round < 3; ++round)
        for (int i = 99; i >= 0; --i)
            REQUIRE(echo_works(clients[i].get(), std::to_string(round) + "/" + std::to_string(i)));
    CHECK(thread_count(server.pid()) == 1);
}

TEST_CASE("stage04: a client that does not read stalls no one; its short write resumes later",
          "[nonblocking][partial]") {
    BigFileRoot root;
    ServerProcess server(g_server, {"--root", root.path()});

    iolab::Fd slow = connect_to(server.port());
    REQUIRE(slow);
    REQUIRE(send_all(slow.get(), "GET big.bin\n"));
    std::string header = recv_line(slow.get());
    REQUIRE(header == "OK " + std::to_string(root.content().size()) + "\n");
    // Now the slow client reads nothing: the server's write hits EAGAIN with
    // most of the file unsent, and the loop must go on serving the others.
    for (int i = 0; i < 20; ++i) {
        iolab::Fd other = connect_to(server.port());
        REQUIRE(other);
        REQUIRE(echo_works(other.get(), "not stalled " + std::to_string(i)));
    }
    // The slow client finally reads: the body resumes exactly where it stopped.
    std::string body = recv_exactly(slow.get(), root.content().size(), 30s);
    REQUIRE(body.size() == root.content().size());
    CHECK(body == root.content());
    CHECK(echo_works(slow.get(), "after the big file"));
}

TEST_CASE("stage04: the idle loop's CPU time is measured (printed, not asserted)",
          "[nonblocking][measure]") {
    ServerProcess server(g_server, {});
    std::this_thread::sleep_for(200ms);
    double before = cpu_seconds(server.pid());
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2s);
    double after = cpu_seconds(server.pid());
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN("stage04 idle, no client connected: " << (after - before) << " s of CPU in " << wall
                                               << " s of wall time");
    SUCCEED();
}

TEST_CASE("stage04: SIGTERM is noticed by the loop, with clients connected", "[nonblocking]") {
    ServerProcess server(g_server, {});
    std::vector<iolab::Fd> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(connect_to(server.port()));
        REQUIRE(clients.back());
        REQUIRE(echo_works(clients.back().get(), "hello"));
    }
    CHECK(server.stop(5s) == 0);
    for (iolab::Fd& client : clients)
        CHECK(closed_by_peer(client.get()));
    std::string summary = server.read_line(5s);
    INFO("summary: " << summary);
    CHECK(summary.starts_with("stage04_nonblocking_poll: 5 connections, 5 requests"));
}

TEST_CASE("stage04: timeouts close a slow, silent or non-reading client; others are served",
          "[nonblocking][timeouts]") {
    check_timeouts({}, Model::concurrent);
}
