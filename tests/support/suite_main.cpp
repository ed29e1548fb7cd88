// Catch2's implementation and the test programs' runners (suite_main.hpp),
// compiled once a build tree. A Catch2 v2 main() that defines
// CATCH_CONFIG_RUNNER or CATCH_CONFIG_MAIN compiles the whole framework again,
// some 20 s of a sanitizer build for each test program; so every main() calls
// a runner here instead.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <utility>

#include "suite_main.hpp"

namespace testkit {

void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

namespace {

// The test cases a run leaves out, by tag, and why: printed before the run,
// so a skipped check never reads as a passed one.
std::vector<std::pair<std::string, std::string>> skipped_tags(const ServerUnderTest& server) {
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

}  // namespace

int run_suite(int argc, char* argv[], const char* program, ServerUnderTest& server,
              const std::vector<SuiteFlag>& expectations, const SuiteHooks& hooks) {
    using Catch::clara::Opt;
    Catch::Session session;
    Catch::clara::Parser cli =
        session.cli() | Opt(server.server, "path")["--server"]("the server binary to test") |
        Opt(server.server_args, "flag")["--server-arg"](
            "an extra argument for the server, e.g. --server-arg=--trigger "
            "--server-arg=edge (repeatable)") |
        Opt(server.server_env, "NAME=VALUE")["--server-env"](
            "a variable for the server's environment only, e.g. "
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
            "the server has no POST /echo: [echo] cases and POST checks are skipped");
    for (const SuiteFlag& flag : expectations)
        cli |= Opt(*flag.value)[flag.name](flag.help);
    session.cli(cli);
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

int run_model_tests(int argc, char* argv[], std::string& server) {
    Catch::Session session;
    using Catch::clara::Opt;
    session.cli(session.cli() | Opt(server, "path")["--server"]("the server binary to test"));
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    if (server.empty()) {
        std::fprintf(stderr, "--server PATH is required\n");
        return 2;
    }
    raise_descriptor_limit();
    return session.run();
}

int run_unit_tests(int argc, char* argv[]) {
    return Catch::Session().run(argc, argv);
}

}  // namespace testkit
