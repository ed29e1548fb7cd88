#include "cli.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

#include "log.hpp"

#ifndef IOLAB_DEFAULT_ROOT
#define IOLAB_DEFAULT_ROOT "www"
#endif

namespace iolab {

namespace {

bool parse_int(std::string_view text, long min, long max, long& out) {
    long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return false;
    if (value < min || value > max) return false;
    out = value;
    return true;
}

// One line of the usage: the option and its argument, then its help in a column.
std::string option_line(const std::string& option, const std::string& help) {
    std::string line = "  " + option;
    line.resize(std::max<std::size_t>(line.size() + 2, 24), ' ');
    return line + help + "\n";
}

}  // namespace

CommandLine::CommandLine(std::string program, std::string description, std::uint16_t default_port)
    : program_(std::move(program)),
      description_(std::move(description)),
      default_port_(default_port) {
    set_program_name(program_);
}

void CommandLine::add_flag(std::string name, std::string help, std::string& target,
                           std::vector<std::string> choices) {
    Flag flag;
    flag.name = std::move(name);
    flag.help = std::move(help);
    flag.text = &target;
    flag.choices = std::move(choices);
    flags_.push_back(std::move(flag));
}

void CommandLine::add_flag(std::string name, std::string help, int& target, int min, int max) {
    Flag flag;
    flag.name = std::move(name);
    flag.help = std::move(help);
    flag.number = &target;
    flag.min = min;
    flag.max = max;
    flags_.push_back(std::move(flag));
}

std::string CommandLine::usage() const {
    const Timeouts defaults;
    std::string text = concat("usage: ", program_, " [options]\n", description_, "\n\noptions:\n");
    text += option_line("--host ADDR", "address to listen on (default 127.0.0.1)");
    text += option_line(
        "--port N", concat("port to listen on, 0 picks a free one (default ", default_port_, ")"));
    text += option_line("--root DIR", concat("document root (default ", IOLAB_DEFAULT_ROOT, ")"));
    text += option_line("--request-timeout S",
                        concat("a request must be complete S s after its first byte (default ",
                               defaults.request.count(), "; 0: never)"));
    text += option_line("--idle-timeout S",
                        concat("close a client silent S s between requests (default ",
                               defaults.idle.count(), "; 0: never)"));
    text += option_line("--send-timeout S",
                        concat("reset a client that reads none of its replies for S s (default ",
                               defaults.send.count(), "; 0: never)"));
    for (const Flag& flag : flags_) {
        std::string help = flag.help;
        if (flag.number)
            help += concat(" (", flag.min, "..", flag.max, ", default ", *flag.number, ")");
        else {
            help += " (";
            for (const std::string& choice : flag.choices)
                help += choice + "|";
            help += concat("default ", *flag.text, ")");
        }
        text += option_line(flag.name + (flag.number ? " N" : " VALUE"), help);
    }
    return text + option_line("--help", "print this and exit");
}

std::optional<int> CommandLine::parse(int argc, char** argv, ServerOptions& options) {
    options.port = default_port_;
    options.root = IOLAB_DEFAULT_ROOT;
    auto fail = [&](const std::string& why) {
        std::fprintf(stderr, "%s: %s\n%s", program_.c_str(), why.c_str(), usage().c_str());
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage().c_str(), stdout);
            return 0;
        }
        // Accept both `--flag value` and `--flag=value`.
        std::string name(arg), value;
        bool has_value = false;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            has_value = true;
        }
        auto take_value = [&]() -> bool {
            if (has_value) return true;
            if (i + 1 >= argc) return false;
            value = argv[++i];
            return true;
        };
        if (name == "--host" || name == "--port" || name == "--root") {
            if (!take_value()) return fail(name + " needs a value");
            if (name == "--host") options.host = value;
            if (name == "--root") options.root = value;
            if (name == "--port") {
                long port = 0;
                if (!parse_int(value, 0, 65535, port)) return fail("bad --port: " + value);
                options.port = static_cast<std::uint16_t>(port);
            }
            continue;
        }
        if (std::chrono::seconds* timeout = name == "--request-timeout" ? &options.timeouts.request
                                            : name == "--idle-timeout"  ? &options.timeouts.idle
                                            : name == "--send-timeout"  ? &options.timeouts.send
                                                                        : nullptr) {
            long seconds = 0;
            if (!take_value()) return fail(name + " needs a value");
            if (!parse_int(value, 0, 24 * 3600, seconds))
                return fail(concat("bad ", name, ": ", value, " (0..86400 seconds)"));
            *timeout = std::chrono::seconds(seconds);
            continue;
        }
        auto flag = std::find_if(flags_.begin(), flags_.end(),
                                 [&](const Flag& f) { return f.name == name; });
        if (flag == flags_.end()) return fail("unknown option: " + std::string(arg));
        if (!take_value()) return fail(name + " needs a value");
        if (flag->number) {
            long number = 0;
            if (!parse_int(value, flag->min, flag->max, number))
                return fail(
                    concat("bad ", name, ": ", value, " (", flag->min, "..", flag->max, ")"));
            *flag->number = static_cast<int>(number);
        } else {
            const auto& choices = flag->choices;
            if (!choices.empty() &&
                std::find(choices.begin(), choices.end(), value) == choices.end())
                return fail(concat("bad ", name, ": ", value));
            *flag->text = value;
        }
    }
    return std::nullopt;
}

}  // namespace iolab
