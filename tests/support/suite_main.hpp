// The main() of the test programs. Catch2's implementation is compiled once,
// in suite_main.cpp, with these runners; a main() includes only this header.
//
// The conformance and adversarial suites (run_suite): one program a suite,
// run once per server by CTest with
//
//   PROGRAM --server PATH [EXPECTATION FLAGS] [--server-arg=X ...]
//           [--server-env=NAME=VALUE ...] [Catch2 options]
//
// or against a server someone else started (a student's web server, nginx):
//
//   PROGRAM --prepare-root DIR        writes the test files, DIR/root, and exits
//   (start the server on DIR/root)
//   PROGRAM --connect HOST:PORT --root DIR/root [--http-only] [--no-echo] ...
//
// With --connect, the test cases tagged [process] (they start, stop or signal
// the server, read its output, or measure it in /proc) are left out, and so
// are [line] under --http-only and [echo] under --no-echo: each run prints
// the names of what it leaves out and why (docs/teaching.md, "Grading any
// server").
//
// The suite names its expectation flags, how it writes its document tree and
// its end-of-run cleanup; the options that say which server to test and how
// to reach it live here, once.
//
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "server_process.hpp"

namespace testkit {

// Raises the soft RLIMIT_NOFILE to the hard one: descriptor-hungry checks (a
// storm of connections, thousands of clients) need it, and servers started
// afterwards inherit it (unless LaunchOptions::max_open_files says otherwise).
void raise_descriptor_limit();

// One expectation flag of a suite (e.g. --serial): set when given.
struct SuiteFlag {
    const char* name;
    bool* value;
    const char* help;
};

// What a suite gives run_suite() beside its expectation flags.
struct SuiteHooks {
    // Writes the suite's document tree into DIR (DIR/root is what the server
    // serves), for --prepare-root DIR.
    std::function<void(const std::string& dir)> prepare_root;
    // The cleanup after the run; returns how many problems it found.
    std::function<int()> finish;
};

// Parses Catch2's options, the ServerUnderTest flags and the suite's `expectations`;
// answers --help and the listings; writes the tree for --prepare-root;
// otherwise requires --server (or --connect and --root), raises the
// descriptor limit, ignores SIGPIPE, runs the tests (less the skipped tags)
// and then `hooks.finish`. Returns the exit status for main(): the failures,
// at most 255. `program` names the suite in messages.
int run_suite(int argc, char* argv[], const char* program, ServerUnderTest& server,
              const std::vector<SuiteFlag>& expectations, const SuiteHooks& hooks);

// The model tests' main(): Catch2's options plus `--server PATH` (required),
// stored in `server`; raises the descriptor limit and runs the tests.
int run_model_tests(int argc, char* argv[], std::string& server);

// Catch2's own main(), for the unit tests.
int run_unit_tests(int argc, char* argv[]);

}  // namespace testkit
