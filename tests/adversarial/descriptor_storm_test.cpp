// A descriptor storm: the server may open 64 files (RLIMIT_NOFILE, set in
// the child before exec), and 200 clients connect at once.
//
// accept() fails with EMFILE while the newcomers wait in the backlog, and
// the listener stays readable: a loop that only retries spins at 100% CPU
// without serving anyone. docs/protocol.md asks instead: refuse the newcomer (ERR
// 503 busy, then close), keep serving the clients already in, and serve new
// ones again once descriptors free up.
//
// What each model promises:
//   event loops (04-08)  every storm client is answered at once: served, or
//                        refused with ERR 503 busy and closed;
//   --blocking (01-03)   a storm client may instead wait unanswered: in the
//                        backlog for its turn (01), for a free worker (03);
//                        stage02 forks a process per client and never runs
//                        out, the parent closing its copy of each socket;
//   --busy-polls (04)    the model spins anyway: the CPU check does not apply.
// Tagged [process]: it sets the server's descriptor limit at launch, so it is
// left out with --connect.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE(
    "descriptor storm: out of descriptors, nobody spins, the connected are served, "
    "and the server recovers",
    "[storm][resources][process]") {
    constexpr int storm_size = 200;
    Server s(LaunchOptions{.environment = {}, .max_open_files = 64, .stderr_path = {}});
    Connection veteran = s.connect();
    CHECK(printable(line_exchange(veteran, "ECHO before")) == printable("before\n"));

    std::vector<Connection> storm;
    for (int i = 0; i < storm_size; ++i) {
        storm.push_back(s.connect());  // completed by the kernel, accepted or not
        storm.back().send("ECHO storm " + std::to_string(i) + "\n");
    }

    if (!expect().blocking) {
        // An event loop answers everyone now: served, or refused and closed.
        int served = 0, refused = 0;
        for (int i = 0; i < storm_size; ++i) {
            std::string reply = storm[i].read_line();
            if (reply == "storm " + std::to_string(i) + "\n") {
                ++served;
            } else {
                INFO("storm client " << i << " got " << printable(reply));
                CHECK(printable(reply) == printable("ERR 503 busy\n"));
                storm[i].wait_for_close();
                ++refused;
            }
        }
        INFO(served << " storm clients served, " << refused << " refused");
        CHECK(refused > 0);  // the limit was reached: the storm tested something
        CHECK(served > 0);
    }

    if (!expect().busy_polls) {
        double cpu = cpu_used_during(s.pid(), 1000ms);
        INFO("CPU seconds used in 1 s at the descriptor limit: " << cpu);
        CHECK(cpu < 0.5);
    }
    CHECK(printable(line_exchange(veteran, "ECHO during")) == printable("during\n"));

    // The storm passes; a serial server also needs its current client gone.
    storm.clear();
    if (expect().serial) veteran.close();
    bool newcomer_served = eventually(
        [&] {
            try {
                Connection late = s.connect();
                return line_exchange(late, "ECHO after") == "after\n";
            } catch (const TestError&) {
                return false;  // refused (closed without a reply): try again
            }
        },
        10s);
    CHECK(newcomer_served);
    if (!expect().serial)
        CHECK(printable(line_exchange(veteran, "ECHO after")) == printable("after\n"));
    veteran.close();
    s.check_alive_then_stop();
}
