// The conformance suite: one program, run against every server.
//
//   iolab_conformance --server PATH [--serial] [--server-arg=X ...]
//                     [--server-env=NAME=VALUE ...] [Catch2 options]
//
// It starts the server with `--port 0 --root <a temporary directory>` plus the
// --server-arg flags (and the --server-env variables in its environment only:
// tests/faults preloads a fault-injecting library into the server this way),
// reads its `listening on HOST:PORT` line, and checks the
// protocol of DESIGN.md over real sockets. cmake/iolab.cmake registers it in
// CTest once per stage, with that stage's expectations as flags.
#define CATCH_CONFIG_RUNNER
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <iostream>

#include "suite.hpp"

namespace {

// One Clara option per expectation (see Expectations in suite.hpp).
Catch::clara::Parser expectation_flags(conformance::Expectations& expect) {
    using Catch::clara::Opt;
    return Catch::clara::Parser() |
           Opt(expect.serial)["--serial"](
               "the model serves one client at a time (a second client waits for the first)");
}

// Descriptor-hungry checks (and servers: it is inherited) get the hard limit.
void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace

int main(int argc, char* argv[]) {
    using Catch::clara::Opt;
    conformance::SuiteOptions& options = conformance::options();

    Catch::Session session;
    session.cli(session.cli() |
                Opt(options.server, "path")["--server"]("the server binary to test (required)") |
                Opt(options.server_args, "flag")["--server-arg"](
                    "an extra argument for the server, e.g. --server-arg=--trigger "
                    "--server-arg=edge (repeatable)") |
                Opt(options.server_env, "NAME=VALUE")["--server-env"](
                    "a variable for the server's environment only, e.g. "
                    "--server-env=LD_PRELOAD=/path/shim.so (repeatable)") |
                expectation_flags(options.expect));
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    if (session.configData().showHelp || session.configData().listTests ||
        session.configData().listTags || session.configData().listTestNamesOnly ||
        session.configData().listReporters)
        return session.run();
    if (options.server.empty()) {
        std::cerr << "iolab_conformance: --server PATH is required (see --help)\n";
        return 2;
    }

    raise_descriptor_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a write to a server that closed must fail, not kill us

    int failures = session.run();
    failures += conformance::finish_shared_server();
    conformance::remove_document_root();
    return failures > 255 ? 255 : failures;
}
