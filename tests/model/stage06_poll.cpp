// stage06_poll's model: no FD_SETSIZE wall; thousands of connections at once.
#include "multiplexing.hpp"
#include "timeout_checks.hpp"

using namespace model;

TEST_CASE("poll: 2000 concurrent connections are all served") {
    check_many_concurrent({}, 2000);
}

TEST_CASE("poll: out of descriptors, newcomers are refused and nothing spins") {
    check_out_of_descriptors({});
}

TEST_CASE("poll: clients that do not read are throttled, others still served") {
    check_slow_readers({});
}

TEST_CASE("poll: a downloader that keeps up does not starve the others") {
    check_fast_downloader_shares({});
}

TEST_CASE("poll: pipelined requests then end-of-input are all answered") {
    check_pipelined_then_eof({});
}

TEST_CASE("poll: timeouts close a slow, silent or non-reading client; others are served") {
    check_timeouts({}, Model::concurrent);
}
