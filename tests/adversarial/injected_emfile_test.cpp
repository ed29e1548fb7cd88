// accept() failing with EMFILE at random moments, injected by strace: the
// fault the descriptor storm provokes for real, but striking whenever the
// injection says, with a newcomer waiting or not.
//
// Hidden: it means something only with the faults injected, which
// tests/faults/CMakeLists.txt arranges (faults.emfile.NAME: the server runs
// under tests/faults/under_strace and this case is selected by its tag).
//
// The refused newcomer gets ERR 503 busy and a close, and tries again, as a
// real client would; nobody else notices, nothing spins, nothing leaks.
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE("injected EMFILE: a refused newcomer retries; nobody else notices",
          "[.][emfile-injected][faults][process]") {
    Server s;
    // A serial server would keep the veteran and never get to the newcomers.
    std::optional<Connection> veteran;
    if (!expect().serial) {
        veteran.emplace(s.connect());
        CHECK(printable(line_exchange(*veteran, "ECHO before")) == printable("before\n"));
    }
    int refused = 0;
    for (int i = 0; i < 30; ++i) {
        INFO("newcomer " << i);
        std::string expected = "newcomer " + std::to_string(i) + "\n";
        std::string reply;
        for (int attempt = 0; attempt < 5 && reply != expected; ++attempt) {
            Connection c = s.connect();
            c.send("ECHO newcomer " + std::to_string(i) + "\n");
            reply = c.read_line();
            if (reply != expected) {
                CHECK(printable(reply) == printable("ERR 503 busy\n"));
                c.wait_for_close();
                ++refused;
            }
        }
        CHECK(printable(reply) == printable(expected));
        if (veteran) {
            std::string still = line_exchange(*veteran, "ECHO veteran " + std::to_string(i));
            CHECK(printable(still) == printable("veteran " + std::to_string(i) + "\n"));
        }
    }
    INFO(refused << " refusals");
    CHECK(refused > 0);  // the faults were really injected
    if (!expect().busy_polls) CHECK(cpu_used_during(s.pid(), 500ms) < 0.25);
    veteran.reset();
    s.check_alive_then_stop(5);
}
