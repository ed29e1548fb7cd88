// The command line every server shares: --host, --port, --root, the three
// timeouts, --help, plus the few flags a stage's model adds (--threads,
// --trigger, --copy...).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iolab {

// How long a client may keep its connection without moving it on (0: for
// ever). Without them one client that trickles a request a byte at a time
// (slowloris), says nothing, or stops reading its replies holds a blocking
// server's only thread (stage01), a process (02) or a worker (03), and an
// event loop's memory and descriptor, for as long as it likes.
// common/timeouts.hpp turns them into deadlines.
struct Timeouts {
    std::chrono::seconds request{30};  // --request-timeout: a request begun is complete by then
    std::chrono::seconds idle{60};     // --idle-timeout: no request under way, nothing to send
    std::chrono::seconds send{30};     // --send-timeout: replies waiting, the client reads none
};

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // set to the stage's default (9000 + NN) by CommandLine
    std::string root;        // set to the shipped www/ by CommandLine
    Timeouts timeouts;
};

class CommandLine {
public:
    // `program` and `description` are printed by --help; `default_port` is 9000 + stage number.
    CommandLine(std::string program, std::string description, std::uint16_t default_port);

    // A stage-specific flag taking one of `choices` (any string if empty).
    // `target` holds the default and receives the value.
    void add_flag(std::string name, std::string help, std::string& target,
                  std::vector<std::string> choices = {});
    // A stage-specific integer flag in [min, max].
    void add_flag(std::string name, std::string help, int& target, int min, int max);

    // Parses `--flag value` and `--flag=value`. Returns nothing when the
    // program should go on, or the exit status when it should stop at once:
    // 0 after --help, 2 after a usage error (reported on stderr).
    std::optional<int> parse(int argc, char** argv, ServerOptions& options);

private:
    struct Flag {
        std::string name, help;
        std::string* text = nullptr;
        std::vector<std::string> choices;
        int* number = nullptr;
        int min = 0, max = 0;
    };
    std::string usage() const;

    std::string program_, description_;
    std::uint16_t default_port_;
    std::vector<Flag> flags_;
};

}  // namespace iolab
