// The main() of the conformance and adversarial suites (Catch2 v2 with a
// runner of our own): one program a suite, run once per server by CTest with
//
//   PROGRAM --server PATH [EXPECTATION FLAGS] [--server-arg=X ...]
//           [--server-env=NAME=VALUE ...] [Catch2 options]
//
// The suite names its expectation flags and its end-of-run cleanup; the
// options that say which server to test and how to start it live here, once.
//
// A header only: Catch2 declares Catch::Session and Clara only where it also
// defines them, in the one file of a program that defines CATCH_CONFIG_RUNNER
// (its main.cpp), so that is the one file that may include this.
#pragma once

#ifndef CATCH_CONFIG_RUNNER
#error "include suite_main.hpp after #define CATCH_CONFIG_RUNNER and <catch2/catch.hpp>"
#endif

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "server_process.hpp"

namespace testkit {

// Raises the soft RLIMIT_NOFILE to the hard one: descriptor-hungry checks (a
// storm of connections, thousands of clients) need it, and servers started
// afterwards inherit it (unless LaunchOptions::max_open_files says otherwise).
inline void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// Parses Catch2's options, the ServerUnderTest flags and the suite's `expectations`;
// answers --help and the listings; otherwise requires --server, raises the
// descriptor limit, ignores SIGPIPE, runs the tests and then `finish` (the
// suite's cleanup, returning how many problems it found). Returns the exit
// status for main(): the failures, at most 255. `program` names the suite
// in error messages.
inline int run_suite(int argc, char* argv[], const char* program, ServerUnderTest& server,
                     const Catch::clara::Parser& expectations, const std::function<int()>& finish) {
    using Catch::clara::Opt;
    Catch::Session session;
    session.cli(session.cli() |
                Opt(server.server, "path")["--server"]("the server binary to test (required)") |
                Opt(server.server_args, "flag")["--server-arg"](
                    "an extra argument for the server, e.g. --server-arg=--trigger "
                    "--server-arg=edge (repeatable)") |
                Opt(server.server_env, "NAME=VALUE")["--server-env"](
                    "a variable for the server's environment only, e.g. "
                    "--server-env=LD_PRELOAD=/path/shim.so (repeatable)") |
                expectations);
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    const Catch::ConfigData& config = session.configData();
    if (config.showHelp || config.listTests || config.listTags || config.listTestNamesOnly ||
        config.listReporters)
        return session.run();
    if (server.server.empty()) {
        std::cerr << program << ": --server PATH is required (see --help)\n";
        return 2;
    }

    raise_descriptor_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a write to a server that closed must fail, not kill us

    int failures = session.run();
    failures += finish();
    return failures > 255 ? 255 : failures;
}

}  // namespace testkit
