// What a server counts for its one-line summary at exit.
#pragma once

#include <atomic>
#include <cstdint>

namespace iolab {

// The counters live in a shared anonymous mapping, so the children of a
// forking server add to the same counts as their parent.
struct Stats {
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bytes_sent{0};
};
Stats& stats();

}  // namespace iolab
