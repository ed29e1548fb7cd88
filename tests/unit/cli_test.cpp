// The command line every server shares (cli.hpp).
#include <unistd.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "unit_support.hpp"

using iolab::CommandLine;
using iolab::ServerOptions;
using namespace iolab::test;

namespace {

// What one parse() did: its verdict and what it printed.
struct Parsed {
    std::optional<int> status;
    std::string out, err;
};

// Runs `cli.parse()` over "program" + `args`, capturing stdout and stderr.
Parsed parse(CommandLine& cli, ServerOptions& options, std::initializer_list<std::string> args) {
    std::vector<std::string> strings = {"stage_test"};
    strings.insert(strings.end(), args);
    std::vector<char*> argv;
    for (std::string& s : strings)
        argv.push_back(s.data());
    argv.push_back(nullptr);

    CapturedOutput out(STDOUT_FILENO);
    CapturedOutput err(STDERR_FILENO);
    Parsed p;
    p.status = cli.parse(static_cast<int>(strings.size()), argv.data(), options);
    p.err = err.finish();
    p.out = out.finish();
    return p;
}

CommandLine stage_cli() {
    return CommandLine("stage07_epoll", "epoll: the ready list", 9007);
}

}  // namespace

TEST_CASE("With no arguments the defaults apply", "[cli]") {
    CommandLine cli = stage_cli();
    ServerOptions options;
    const Parsed p = parse(cli, options, {});
    CHECK_FALSE(p.status.has_value());
    CHECK(options.host == "127.0.0.1");
    CHECK(options.port == 9007);
    CHECK(options.root.find("www") != std::string::npos);  // the shipped document root
    CHECK(p.out.empty());
    CHECK(p.err.empty());
}

TEST_CASE("--host, --port and --root, as two words or with =", "[cli]") {
    CommandLine cli = stage_cli();
    ServerOptions options;
    SECTION("two words") {
        const Parsed p =
            parse(cli, options, {"--host", "0.0.0.0", "--port", "8080", "--root", "/srv/www"});
        CHECK_FALSE(p.status.has_value());
        CHECK(options.host == "0.0.0.0");
        CHECK(options.port == 8080);
        CHECK(options.root == "/srv/www");
    }
    SECTION("with =") {
        const Parsed p = parse(cli, options, {"--host=::1", "--port=0", "--root=/tmp"});
        CHECK_FALSE(p.status.has_value());
        CHECK(options.host == "::1");
        CHECK(options.port == 0);  // "pick a free port"
        CHECK(options.root == "/tmp");
    }
    SECTION("the port range") {
        CHECK_FALSE(parse(cli, options, {"--port", "65535"}).status.has_value());
        CHECK(options.port == 65535);
    }
}

TEST_CASE("--help prints the usage and exits 0", "[cli]") {
    CommandLine cli = stage_cli();
    ServerOptions options;
    const Parsed p = parse(cli, options, {"--help"});
    REQUIRE(p.status.has_value());
    CHECK(*p.status == 0);
    const std::string text = p.out + p.err;
    CHECK(text.find("--port") != std::string::npos);
    CHECK(text.find("--root") != std::string::npos);
    CHECK(text.find("stage07_epoll") != std::string::npos);
}

TEST_CASE("Usage errors exit 2 with a message on stderr", "[cli]") {
    CommandLine cli = stage_cli();
    std::string trigger = "level";
    int threads = 4;
    cli.add_flag("--trigger", "level or edge", trigger, {"level", "edge"});
    cli.add_flag("--threads", "worker threads", threads, 1, 64);

    const std::vector<std::vector<std::string>> bad = {
        {"--bogus"},
        {"--port"},  // the value is missing
        {"--port", "abc"},
        {"--port", "65536"},
        {"--port", "-1"},
        {"--port", "80x"},
        {"--port="},
        {"--trigger", "sideways"},  // not one of the choices
        {"--trigger=LEVEL"},        // choices are exact
        {"--threads", "0"},         // below the range
        {"--threads", "65"},        // above it
        {"--threads", "many"},
        {"--threads", "4.5"},
        {"--threads", "99999999999999999999"},
        {"stray"},  // no positional arguments
    };
    for (const std::vector<std::string>& args : bad) {
        CAPTURE(args);
        ServerOptions options;
        const Parsed p = args.size() == 1 ? parse(cli, options, {args[0]})
                                          : parse(cli, options, {args[0], args[1]});
        REQUIRE(p.status.has_value());
        CHECK(*p.status == 2);
        CHECK_FALSE(p.err.empty());
    }
}

TEST_CASE("Stage flags: choices and integer ranges", "[cli]") {
    CommandLine cli = stage_cli();
    std::string trigger = "level";
    std::string copy = "read";
    int threads = 4;
    cli.add_flag("--trigger", "level or edge", trigger, {"level", "edge"});
    cli.add_flag("--copy", "how file bodies are copied", copy,
                 {"read", "mmap", "sendfile", "splice"});
    cli.add_flag("--threads", "worker threads", threads, 1, 64);
    ServerOptions options;

    SECTION("defaults stay when the flags are absent") {
        CHECK_FALSE(parse(cli, options, {"--port", "1234"}).status.has_value());
        CHECK(trigger == "level");
        CHECK(copy == "read");
        CHECK(threads == 4);
    }
    SECTION("values are taken, in both forms") {
        CHECK_FALSE(parse(cli, options, {"--trigger", "edge", "--copy=sendfile", "--threads", "64"})
                        .status.has_value());
        CHECK(trigger == "edge");
        CHECK(copy == "sendfile");
        CHECK(threads == 64);
        CHECK_FALSE(parse(cli, options, {"--threads=1"}).status.has_value());
        CHECK(threads == 1);
    }
    SECTION("--help lists the stage flags") {
        const Parsed p = parse(cli, options, {"--help"});
        CHECK(p.status == 0);
        const std::string text = p.out + p.err;
        CHECK(text.find("--trigger") != std::string::npos);
        CHECK(text.find("--threads") != std::string::npos);
    }
}
