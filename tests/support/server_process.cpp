#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace testkit {

namespace {

// Our environment with `changes` (NAME=VALUE) applied, as the strings
// execve() takes. Built before fork(): the child may not allocate.
std::vector<std::string> environment_with(const std::vector<std::string>& changes) {
    std::vector<std::string> result;
    auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        bool replaced = false;
        for (const std::string& change : changes)
            replaced = replaced || name_of(change) == name_of(entry);
        if (!replaced) result.push_back(entry);
    }
    result.insert(result.end(), changes.begin(), changes.end());
    return result;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (std::string& s : strings)
        pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers;
}

// In the child, between fork() and exec(): only async-signal-safe calls.
// `stderr_fd` -1: keep ours.
[[noreturn]] void exec_server(char* const* argv, char* const* envp, rlim_t max_open_files,
                              int stdout_fd, int stderr_fd, pid_t parent) {
    ::setpgid(0, 0);  // its own group: killing the group also ends a forking server's children
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test, even if it is killed
    if (::getppid() != parent) ::_exit(127);
    ::dup2(stdout_fd, STDOUT_FILENO);
    if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
    if (max_open_files > 0) {
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = max_open_files;
        if (::setrlimit(RLIMIT_NOFILE, &limit) < 0) ::_exit(127);
    }
    ::execve(argv[0], argv, envp);
    ::_exit(127);
}

}  // namespace

ServerProcess::ServerProcess(const std::string& binary, const std::vector<std::string>& args,
                             const LaunchOptions& launch)
    : stderr_path_(launch.stderr_path) {
    std::vector<std::string> argv = {binary, "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> exec_args = pointers_to(argv);
    std::vector<std::string> environment = environment_with(launch.environment);
    std::vector<char*> exec_environment = pointers_to(environment);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) < 0) throw TestError("pipe2 failed");
    stdout_.reset(pipe_fds[0]);
    iolab::Fd stdout_write(pipe_fds[1]);
    iolab::Fd stderr_file;
    if (!stderr_path_.empty()) {
        stderr_file.reset(
            ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!stderr_file) throw TestError("cannot create " + stderr_path_);
    }

    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw TestError(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0)
        exec_server(exec_args.data(), exec_environment.data(), launch.max_open_files,
                    stdout_write.get(), stderr_file.get(), parent);
    ::setpgid(pid_, pid_);  // also here, so the group exists before we ever signal it
    stdout_write.reset();   // the pipe reaches EOF when the server (and its children) exit
    try {
        read_listening_line();
    } catch (...) {
        kill_and_reap();  // a constructor that throws gets no destructor call
        throw;
    }
}

void ServerProcess::read_listening_line() {
    // The first line must be `listening on HOST:PORT`.
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + io_timeout;
    while (line.find('\n') == std::string::npos) {
        pollfd p{stdout_.get(), POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        int ready = ::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 0)));
        if (ready < 0 && errno == EINTR) continue;
        char c[512];
        ssize_t n = ready > 0 ? ::read(stdout_.get(), c, sizeof c) : 0;
        if (n <= 0) {
            std::optional<int> status = wait_for_exit(std::chrono::milliseconds(100));
            throw TestError(
                "the server did not announce `listening on HOST:PORT` (" +
                (status ? describe_wait_status(*status) : std::string("still running")) +
                "); stdout: " + printable(line) + "; stderr: " + printable(stderr_text(), 2000));
        }
        line.append(c, static_cast<std::size_t>(n));
    }
    stdout_buffer_ = line.substr(line.find('\n') + 1);
    line.erase(line.find('\n'));

    const std::string prefix = "listening on ";
    std::size_t colon = line.rfind(':');
    if (!line.starts_with(prefix) || colon == std::string::npos || colon < prefix.size())
        throw TestError("bad first stdout line: " + printable(line));
    host_ = line.substr(prefix.size(), colon - prefix.size());
    if (host_.starts_with('[') && host_.ends_with(']')) host_ = host_.substr(1, host_.size() - 2);
    int port = std::atoi(line.c_str() + colon + 1);
    if (port <= 0 || port > 65535) throw TestError("bad port in " + printable(line));
    port_ = static_cast<std::uint16_t>(port);
}

ServerProcess ServerProcess::attach(const std::string& host, std::uint16_t port) {
    return ServerProcess(Attached{}, host, port);
}

ServerProcess::~ServerProcess() {
    kill_and_reap();
}

void ServerProcess::need_process(const char* what) const {
    if (pid_ <= 0)
        throw TestError(std::string(what) + ": not available with --connect (no server process)");
}

pid_t ServerProcess::pid() const {
    need_process("the server's pid");
    return pid_;
}

void ServerProcess::kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);  // the whole group: the server and any children it forked
    if (!wait_status_) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        wait_status_ = status;
    }
}

void ServerProcess::send_signal(int signal) const {
    need_process("signalling the server");
    ::kill(pid_, signal);
}

std::optional<int> ServerProcess::wait_for_exit(std::chrono::milliseconds wait) {
    need_process("waiting for the server to exit");  // waitpid(-1) would reap anyone
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (!wait_status_) {
        int status = 0;
        pid_t done = ::waitpid(pid_, &status, WNOHANG);
        if (done == pid_) {
            wait_status_ = status;
        } else if (std::chrono::steady_clock::now() >= deadline) {
            break;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    return wait_status_;
}

int ServerProcess::stop(std::chrono::milliseconds grace) {
    if (!wait_status_) {
        send_signal(SIGTERM);
        if (!wait_for_exit(grace)) kill_and_reap();
    }
    return WIFEXITED(*wait_status_) ? WEXITSTATUS(*wait_status_) : -1;
}

std::string ServerProcess::read_line(std::chrono::milliseconds timeout) {
    need_process("the server's stdout");
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (std::size_t lf = stdout_buffer_.find('\n'); lf != std::string::npos) {
            std::string line = stdout_buffer_.substr(0, lf);
            stdout_buffer_.erase(0, lf + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{stdout_.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 0)));
        if (ready < 0 && errno == EINTR) continue;
        char chunk[512];
        ssize_t n = ready > 0 ? ::read(stdout_.get(), chunk, sizeof chunk) : 0;
        if (n <= 0) break;  // timed out, or stdout ended
        stdout_buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    return std::exchange(stdout_buffer_, {});  // a last line without its LF, or ""
}

std::string ServerProcess::stdout_so_far() {
    need_process("the server's stdout");
    // Nonblocking: a forking server's children may still hold the pipe open.
    for (;;) {
        pollfd p{stdout_.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        char chunk[4096];
        ssize_t n = ::read(stdout_.get(), chunk, sizeof chunk);
        if (n <= 0) break;
        stdout_buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    return stdout_buffer_;
}

std::string ServerProcess::stderr_text() const {
    if (stderr_path_.empty()) return {};
    std::ifstream in(stderr_path_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

ServerProcess ServerUnderTest::start(const std::string& root, const std::string& scratch,
                                     LaunchOptions extra) const {
    if (connected()) {
        auto [host, port] = parse_host_port(connect);
        return ServerProcess::attach(host, port);
    }
    static int started = 0;
    std::vector<std::string> args = {"--root", root};
    args.insert(args.end(), server_args.begin(), server_args.end());
    extra.environment.insert(extra.environment.begin(), server_env.begin(), server_env.end());
    extra.stderr_path = scratch + "/server-" + std::to_string(++started) + ".stderr";
    return ServerProcess(server, args, extra);
}

std::pair<std::string, std::uint16_t> parse_host_port(const std::string& text) {
    std::size_t colon = text.rfind(':');
    std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
    if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
    std::string port = colon == std::string::npos ? "" : text.substr(colon + 1);
    bool digits = !port.empty() && port.size() <= 5 &&
                  port.find_first_not_of("0123456789") == std::string::npos;
    int number = digits ? std::atoi(port.c_str()) : 0;
    if (host.empty() || number <= 0 || number > 65535)
        throw TestError("bad --connect " + printable(text) +
                        ": want HOST:PORT, e.g. 127.0.0.1:8080");
    return {host, static_cast<std::uint16_t>(number)};
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               ::strsignal(WTERMSIG(status)) + ")";
    return "wait status " + std::to_string(status);
}

std::string sanitizer_report(const std::string& text) {
    static constexpr std::array markers = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                           "runtime error:", "ThreadSanitizer"};
    std::size_t first = std::string::npos;
    for (const char* marker : markers)
        first = std::min(first, text.find(marker));
    if (first == std::string::npos) return {};
    std::size_t line_start = text.rfind('\n', first);
    return text.substr(line_start == std::string::npos ? 0 : line_start + 1, 4000);
}

}  // namespace testkit
