// The adversarial suite: one program, run against every server.
//
//   iolab_adversarial --server PATH [--serial] [--blocking] [--busy-polls]
//                     [--server-arg=X ...] [--server-env=NAME=VALUE ...]
//                     [Catch2 options]
//   iolab_adversarial --prepare-root DIR
//   iolab_adversarial --connect HOST:PORT --root DIR/root [--http-only]
//                     [--no-echo] [--no-symlinks] [expectations] [Catch2 options]
//
// Each test case starts the server with `--port 0 --root <a temporary
// directory>` plus the --server-arg flags, attacks it (pipelined floods,
// endless lines, smuggling attempts, resets, clients that never read, a
// descriptor storm, path tricks, files past 2 GiB), and checks that it
// survives, stays bounded and keeps serving. cmake/iolab.cmake registers it
// in CTest once per server, with that server's expectations as flags.
#include "adversarial.hpp"
#include "suite_main.hpp"

namespace {

// One flag per expectation (see Expectations in suite.hpp).
std::vector<testkit::SuiteFlag> expectation_flags(adversarial::Expectations& expect) {
    return {
        {"--serial", &expect.serial, "the model serves one client at a time"},
        {"--blocking", &expect.blocking,
         "blocking I/O: a newcomer may wait unanswered for a thread, a process or its turn"},
        {"--busy-polls", &expect.busy_polls,
         "the model burns a core even when idle: no CPU-time checks"},
        {"--no-symlinks", &expect.no_symlinks,
         "every symlink is refused, even inside the root: the swapped one is never served"},
    };
}

}  // namespace

int main(int argc, char* argv[]) {
    adversarial::SuiteOptions& options = adversarial::options();
    testkit::SuiteHooks hooks{.prepare_root = adversarial::prepare_root, .finish = [] {
                                  adversarial::remove_document_root();
                                  return 0;
                              }};
    return testkit::run_suite(argc, argv, "iolab_adversarial", options,
                              expectation_flags(options.expect), hooks);
}
