// The Catch2 main for the model tests: adds `--server PATH`, the stage binary under test.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "suite_main.hpp"

std::string g_server;  // the binary under test, for the test cases

int main(int argc, char** argv) {
    Catch::Session session;
    using namespace Catch::clara;
    session.cli(session.cli() | Opt(g_server, "path")["--server"]("the server binary to test"));
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    if (g_server.empty()) {
        std::fprintf(stderr, "--server PATH is required\n");
        return 2;
    }
    testkit::raise_descriptor_limit();
    return session.run();
}
