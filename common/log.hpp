// A tiny logger: one line per message to stderr, with the program name.
// stdout is reserved for the `listening on` line and the summary.
#pragma once

#include <sstream>
#include <string>
#include <utility>

namespace iolab {

void set_program_name(std::string name);
void log_line(const char* level, const std::string& message);

// no_sanitize("vptr"): UBSan checks a virtual call's object by probing its
// memory through a pipe it opens, and servers log exactly when they have no
// descriptor left (EMFILE): the probe fails and UBSan reports a false
// "invalid vptr" on the ostringstream, which aborts a sanitizer build.
template <typename... Parts>
__attribute__((no_sanitize("vptr"))) std::string concat(Parts&&... parts) {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    return out.str();
}

template <typename... Parts>
void log_info(Parts&&... parts) {
    log_line("info", concat(std::forward<Parts>(parts)...));
}

template <typename... Parts>
void log_warn(Parts&&... parts) {
    log_line("warn", concat(std::forward<Parts>(parts)...));
}

template <typename... Parts>
void log_error(Parts&&... parts) {
    log_line("error", concat(std::forward<Parts>(parts)...));
}

}  // namespace iolab
