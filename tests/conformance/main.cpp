// The conformance suite: one program, run against every server.
//
//   iolab_conformance --server PATH [--serial] [--server-arg=X ...]
//                     [--server-env=NAME=VALUE ...] [Catch2 options]
//   iolab_conformance --prepare-root DIR
//   iolab_conformance --connect HOST:PORT --root DIR/root [--http-only]
//                     [--no-echo] [--serial] [Catch2 options]
//
// It starts the server with `--port 0 --root <a temporary directory>` plus the
// --server-arg flags (and the --server-env variables in its environment only:
// tests/faults preloads a fault-injecting library into the server this way),
// reads its `listening on HOST:PORT` line, and checks the
// protocol of docs/protocol.md over real sockets. With --connect it tests a
// server already running (see tests/support/suite_main.hpp). cmake/iolab.cmake registers it in
// CTest once per stage, with that stage's expectations as flags.
#include "conformance.hpp"
#include "suite_main.hpp"

namespace {

// One flag per expectation (see Expectations in suite.hpp).
std::vector<testkit::SuiteFlag> expectation_flags(conformance::Expectations& expect) {
    return {
        {"--serial", &expect.serial,
         "the model serves one client at a time (a second client waits for the first)"},
    };
}

}  // namespace

int main(int argc, char* argv[]) {
    conformance::SuiteOptions& options = conformance::options();
    testkit::SuiteHooks hooks{.prepare_root = conformance::prepare_root, .finish = [] {
                                  int problems = conformance::finish_shared_server();
                                  conformance::remove_document_root();
                                  return problems;
                              }};
    return testkit::run_suite(argc, argv, "iolab_conformance", options,
                              expectation_flags(options.expect), hooks);
}
