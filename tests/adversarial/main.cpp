// The adversarial suite: one program, run against every server.
//
//   iolab_adversarial --server PATH [--serial] [--blocking] [--busy-polls]
//                     [--server-arg=X ...] [--server-env=NAME=VALUE ...]
//                     [Catch2 options]
//
// Each test case starts the server with `--port 0 --root <a temporary
// directory>` plus the --server-arg flags, attacks it (pipelined floods,
// endless lines, smuggling attempts, resets, clients that never read, a
// descriptor storm, path tricks, files past 2 GiB), and checks that it
// survives, stays bounded and keeps serving. cmake/iolab.cmake registers it
// in CTest once per server, with that server's expectations as flags.
#define CATCH_CONFIG_RUNNER
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <iostream>

#include "suite.hpp"

namespace {

// One Clara option per expectation (see Expectations in suite.hpp).
Catch::clara::Parser expectation_flags(adversarial::Expectations& expect) {
    using Catch::clara::Opt;
    return Catch::clara::Parser() |
           Opt(expect.serial)["--serial"]("the model serves one client at a time") |
           Opt(expect.blocking)["--blocking"](
               "blocking I/O: a newcomer may wait unanswered for a thread, a process or its turn") |
           Opt(expect.busy_polls)["--busy-polls"](
               "the model burns a core even when idle: no CPU-time checks");
}

// The storm of connections needs descriptors (servers get their own limit).
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
    adversarial::SuiteOptions& options = adversarial::options();

    Catch::Session session;
    session.cli(session.cli() |
                Opt(options.server, "path")["--server"]("the server binary to test (required)") |
                Opt(options.server_args, "flag")["--server-arg"](
                    "an extra argument for the server, e.g. --server-arg=--trigger "
                    "--server-arg=edge (repeatable)") |
                Opt(options.server_env, "NAME=VALUE")["--server-env"](
                    "a variable for the server's environment only (repeatable)") |
                expectation_flags(options.expect));
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    if (session.configData().showHelp || session.configData().listTests ||
        session.configData().listTags || session.configData().listTestNamesOnly ||
        session.configData().listReporters)
        return session.run();
    if (options.server.empty()) {
        std::cerr << "iolab_adversarial: --server PATH is required (see --help)\n";
        return 2;
    }

    raise_descriptor_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a write to a server that closed must fail, not kill us

    int failures = session.run();
    adversarial::remove_document_root();
    return failures > 255 ? 255 : failures;
}
