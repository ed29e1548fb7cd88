// The main() of the conformance and adversarial suites (Catch2 v2 with a
// runner of our own): one program a suite, run once per server by CTest with
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

#ifndef CATCH_CONFIG_RUNNER
#error "include suite_main.hpp after #define CATCH_CONFIG_RUNNER and <catch2/catch.hpp>"
#endif

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
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

// What a suite gives run_suite() beside its expectation flags.
struct SuiteHooks {
    // Writes the suite's document tree into DIR (DIR/root is what the server
    // serves), for --prepare-root DIR.
    std::function<void(const std::string& dir)> prepare_root;
    // The cleanup after the run; returns how many problems it found.
    std::function<int()> finish;
};

// The test cases a run leaves out, by tag, and why: printed before the run,
// so a skipped check never reads as a passed one.
inline std::vector<std::pair<std::string, std::string>> skipped_tags(
    const ServerUnderTest& server) {
    std::vector<std::pair<std::string, std::string>> skipped;
    if (server.connected())
        skipped.emplace_back("process",
                             "--connect: they start, stop or signal the server, read its output "
                             "or measure it in /proc");
    if (server.http_only)
        skipped.emplace_back("line", "--http-only: they use the line protocol (ECHO, GET path)");
    if (server.no_echo) skipped.emplace_back("echo", "--no-echo: they use POST /echo");
    return skipped;
}

// Parses Catch2's options, the ServerUnderTest flags and the suite's `expectations`;
// answers --help and the listings; writes the tree for --prepare-root;
// otherwise requires --server (or --connect and --root), raises the
// descriptor limit, ignores SIGPIPE, runs the tests (less the skipped tags)
// and then `hooks.finish`. Returns the exit status for main(): the failures,
// at most 255. `program` names the suite in messages.
inline int run_suite(int argc, char* argv[], const char* program, ServerUnderTest& server,
                     const Catch::clara::Parser& expectations, const SuiteHooks& hooks) {
    using Catch::clara::Opt;
    Catch::Session session;
    session.cli(
        session.cli() | Opt(server.server, "path")["--server"]("the server binary to test") |
        Opt(server.server_args,
            "flag")["--server-arg"]("an extra argument for the server, e.g. --server-arg=--trigger "
                                    "--server-arg=edge (repeatable)") |
        Opt(server.server_env,
            "NAME=VALUE")["--server-env"]("a variable for the server's environment only, e.g. "
                                          "--server-env=LD_PRELOAD=/path/shim.so (repeatable)") |
        Opt(server.connect, "host:port")["--connect"](
            "test a server already running there (numeric address), instead of --server; "
            "needs --root") |
        Opt(server.connect_root, "dir")["--root"](
            "with --connect: the directory the server serves, written by --prepare-root") |
        Opt(server.prepare_root, "dir")["--prepare-root"](
            "write the test files into DIR (the server is to serve DIR/root) and exit") |
        Opt(server.http_only)["--http-only"](
            "the server speaks only HTTP, not the line protocol: [line] cases are skipped") |
        Opt(server.no_echo)["--no-echo"](
            "the server has no POST /echo: [echo] cases and POST checks are skipped") |
        expectations);
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    Catch::ConfigData& config = session.configData();
    if (config.showHelp || config.listTests || config.listTags || config.listTestNamesOnly ||
        config.listReporters)
        return session.run();

    if (!server.prepare_root.empty()) {
        try {
            hooks.prepare_root(server.prepare_root);
        } catch (const std::exception& e) {
            std::cerr << program << ": --prepare-root: " << e.what() << "\n";
            return 1;
        }
        std::string dir = std::filesystem::absolute(server.prepare_root).lexically_normal();
        std::cout << program << ": wrote the test files into " << dir << "\nstart the server on "
                  << dir << "/root, then run\n  " << program << " --connect HOST:PORT --root "
                  << dir << "/root [flags]\n";
        return 0;
    }
    if (server.connected()) {
        if (!server.server.empty() || server.connect_root.empty()) {
            std::cerr << program << ": --connect needs --root DIR and no --server (see --help)\n";
            return 2;
        }
        try {
            parse_host_port(server.connect);
        } catch (const TestError& e) {
            std::cerr << program << ": " << e.what() << "\n";
            return 2;
        }
    } else if (server.server.empty()) {
        std::cerr << program << ": --server PATH or --connect HOST:PORT is required (see --help)\n";
        return 2;
    }

    // Leave the skipped tags out (ANDed with any test spec given), and say so.
    std::vector<std::pair<std::string, std::string>> skipped = skipped_tags(server);
    for (const auto& [tag, why] : skipped) {
        std::vector<std::string> names;
        for (const Catch::TestCase& test : Catch::getAllTestCasesSorted(session.config()))
            for (const std::string& t : test.tags)
                if (t == tag && !test.isHidden()) names.push_back(test.name);
        if (names.empty()) continue;
        std::cout << program << ": not checked, " << why << ":\n";
        for (const std::string& name : names)
            std::cout << "  - " << name << "\n";
    }
    if (!skipped.empty()) {
        for (const auto& [tag, why] : skipped)
            config.testsOrTags.push_back("~[" + tag + "]");
        session.useConfigData(config);
    }

    raise_descriptor_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a write to a server that closed must fail, not kill us

    int failures = session.run();
    if (hooks.finish) failures += hooks.finish();
    return failures > 255 ? 255 : failures;
}

}  // namespace testkit
