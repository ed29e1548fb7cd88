// What every server does around its I/O model: announce where it listens,
// stop cleanly on SIGINT/SIGTERM (stop.hpp), and count what it served
// (counters.hpp).
#pragma once

#include <string>

#include "cli.hpp"
#include "counters.hpp"
#include "stop.hpp"

namespace iolab {

// Prints `listening on HOST:PORT` (the real port) on stdout and flushes it.
void announce_listening(const ServerOptions& options, int listen_fd);

// Prints `<program>: N connections, N requests, N bytes sent` on stdout.
void print_summary(const std::string& program);

}  // namespace iolab
