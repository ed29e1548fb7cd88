#include "log.hpp"

#include <cstdio>
#include <string>

namespace iolab {

namespace {
std::string& program_name() {
    static std::string name = "iolab";
    return name;
}
}  // namespace

void set_program_name(std::string name) {
    program_name() = std::move(name);
}

void log_line(const char* level, const std::string& message) {
    // One fprintf per line: stdio locks the stream, so lines from several
    // threads never interleave mid-line.
    std::fprintf(stderr, "%s: %s: %s\n", program_name().c_str(), level, message.c_str());
}

}  // namespace iolab
