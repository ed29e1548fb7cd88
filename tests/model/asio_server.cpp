// asio_server's model tests: the comparison server has the same timeouts as
// the stages (a watchdog coroutine per connection, see its main.cpp), with
// one io_context thread and with several (a strand per connection).
#include "timeout_checks.hpp"

using namespace model;

TEST_CASE("asio: timeouts close a slow, silent or non-reading client; others are served",
          "[timeouts]") {
    SECTION("one thread") {
        check_timeouts({}, Model::concurrent);
    }
    SECTION("four threads") {
        check_timeouts({"--threads", "4"}, Model::concurrent);
    }
}
