// The report: a human summary, or one JSON object for the compare runner.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "options.hpp"
#include "stats.hpp"

namespace iolab::loadgen {

struct RunSummary {
    const Options* options = nullptr;
    std::string target;  // "host:port"
    int threads = 1;
    Stats stats;               // all workers merged
    double duration_s = 0;     // the measured window actually run
    bool cut_short = false;    // the time limit struck before the planned end
    bool interrupted = false;  // SIGINT or SIGTERM
    std::vector<std::string> warnings;
};

// Fills summary.warnings: the things a number alone would not say (a Nagle
// stall, a run with no request completed, a run cut short).
void add_warnings(RunSummary& summary);

// 0: completed without errors; 1: errors, nothing completed, or cut short.
int exit_status(const RunSummary& summary);

// One line saying what is about to run (human mode only).
void print_plan(const Options& options, const std::string& target, int threads, std::ostream& out);

void print_summary(const RunSummary& summary, std::ostream& out);
void print_json(const RunSummary& summary, std::ostream& out);

}  // namespace iolab::loadgen
