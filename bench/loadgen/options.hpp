// The load generator's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "workload.hpp"

namespace iolab::loadgen {

struct Options {
    WorkloadKind workload = WorkloadKind::echo;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    // Local addresses the connections are spread over (bind() before
    // connect()); empty: the kernel picks, one address for every connection.
    std::vector<std::string> sources;
    int conns = 10;
    int idle = 0;
    int pipeline = 1;
    double think_ms = 0;
    double rate = 0;  // requests/s in total; 0: closed loop
    std::optional<double> duration_s;
    std::optional<std::uint64_t> requests;
    double warmup_s = 0;
    int threads = 1;
    std::size_t size = 64;
    std::string path = "/index.html";
    std::optional<std::string> expect_file;
    double timeout_ms = 5000;
    std::optional<double> time_limit_s;
    int max_retries = 10;
    bool json = false;
};

// A command line that cannot be run: reported with a hint, exit status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses and checks the command line. Returns nothing after printing --help.
// Throws UsageError.
std::optional<Options> parse_options(int argc, char** argv);

void print_usage(std::ostream& out);

}  // namespace iolab::loadgen
