// Model tests for stage01_blocking: one client at a time.
//
// What the model promises beyond the protocol is little: clients are served
// in turn (the conformance suite checks it). What this file checks is what
// the timeouts buy a server with a single client slot: a slowloris, silent
// or non-reading client holds the whole server, but only until its timeout;
// then the next client in the accept queue is served.
#include "timeout_checks.hpp"

using namespace model;

TEST_CASE("stage01: timeouts free the server from a slow, silent or non-reading client",
          "[timeouts]") {
    check_timeouts({}, Model::serial);
}
