// stage07_epoll's model, in both trigger modes: thousands of connections at
// once, the interest list kept in step with the connections, and the same
// limits and throttling as select and poll. Edge-triggered mode is where a
// read or write that stops before EAGAIN loses an event for good, so every
// scenario runs with --trigger edge too.
#include <sys/types.h>

#include "multiplexing.hpp"
#include "timeouts.hpp"

using namespace model;

namespace {

const std::vector<std::string> level{"--trigger", "level"};
const std::vector<std::string> edge{"--trigger", "edge"};

// The descriptors a process's epoll instance watches: the `tfd:` lines of
// /proc/PID/fdinfo/N for its (single) anon_inode:[eventpoll] descriptor. -1 if none.
int epoll_watched_count(pid_t pid) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* fds = opendir(dir.c_str());
    if (!fds) return -1;
    int watched = -1;
    while (dirent* entry = readdir(fds)) {
        char target[256] = {};
        std::string link = dir + "/" + entry->d_name;
        if (readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
        if (std::string_view(target) != "anon_inode:[eventpoll]") continue;
        std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + entry->d_name);
        watched = 0;
        for (std::string line; std::getline(info, line);)
            if (line.starts_with("tfd:")) ++watched;
    }
    closedir(fds);
    return watched;
}

void check_interest_list(const std::vector<std::string>& args) {
    ServerProcess server(g_server, args);
    std::vector<iolab::Fd> clients = connect_many(server.port(), 100);
    REQUIRE(clients.size() == 100);
    for (iolab::Fd& client : clients)
        REQUIRE(echo_works(client.get(), "hi"));
    CHECK(epoll_watched_count(server.pid()) == 101);  // the listener and every client
    clients.clear();
    int watched = -1;
    for (int i = 0; i < 200 && watched != 1; ++i) {
        std::this_thread::sleep_for(20ms);
        watched = epoll_watched_count(server.pid());
    }
    CHECK(watched == 1);  // closed connections left the interest list
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
