#include "proc.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace testkit {

namespace {

std::string proc_path(pid_t pid, const std::string& rest) {
    return "/proc/" + std::to_string(pid) + "/" + rest;
}

// The names in a /proc directory, without "." and "..".
std::vector<std::string> entries(const std::string& path) {
    std::vector<std::string> names;
    if (DIR* dir = ::opendir(path.c_str())) {
        while (dirent* entry = ::readdir(dir))
            if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
        ::closedir(dir);
    }
    return names;
}

}  // namespace

std::vector<pid_t> process_tree(pid_t pid) {
    std::vector<pid_t> tree{pid};
    for (std::size_t i = 0; i < tree.size(); ++i)
        for (pid_t child : child_pids(tree[i]))
            tree.push_back(child);
    return tree;
}

std::vector<pid_t> child_pids(pid_t pid) {
    std::vector<pid_t> children;
    // Children are listed per thread: a child forked by any thread counts.
    for (const std::string& task : entries(proc_path(pid, "task"))) {
        std::ifstream listed(proc_path(pid, "task/" + task + "/children"));
        pid_t child;
        while (listed >> child)
            children.push_back(child);
    }
    return children;
}

int thread_count(pid_t pid) {
    return static_cast<int>(entries(proc_path(pid, "task")).size());
}

std::vector<std::string> thread_names(pid_t pid) {
    std::vector<std::string> names;
    for (const std::string& task : entries(proc_path(pid, "task"))) {
        std::ifstream comm(proc_path(pid, "task/" + task + "/comm"));
        std::string name;
        std::getline(comm, name);
        names.push_back(name);
    }
    return names;
}

long memory_kib(pid_t pid) {
    long total = 0;
    for (pid_t p : process_tree(pid)) {
        std::ifstream rollup(proc_path(p, "smaps_rollup"));
        std::string line;
        while (std::getline(rollup, line))
            if (line.starts_with("Pss:")) total += std::stol(line.substr(4));
    }
    return total;
}

int open_fds(pid_t pid) {
    int total = 0;
    for (pid_t p : process_tree(pid))
        total += own_open_fds(p);
    return total;
}

int own_open_fds(pid_t pid) {
    return static_cast<int>(entries(proc_path(pid, "fd")).size());
}

namespace {

// What descriptor `fd` of process `pid` is: a path, "socket:[INODE]", "pipe:[INODE]"...
std::string fd_target(pid_t pid, const std::string& fd) {
    char target[256] = {};
    ssize_t n = ::readlink(proc_path(pid, "fd/" + fd).c_str(), target, sizeof target - 1);
    return n > 0 ? target : "?";
}

// The values of the `key` lines ("tfd:", "flags:") in /proc/PID/fdinfo/FD.
std::vector<std::string> fdinfo_values(pid_t pid, int fd, const std::string& key) {
    std::vector<std::string> values;
    std::ifstream info(proc_path(pid, "fdinfo/" + std::to_string(fd)));
    for (std::string line; std::getline(info, line);)
        if (line.starts_with(key)) values.push_back(line.substr(key.size()));
    return values;
}

}  // namespace

std::vector<std::pair<int, std::string>> descriptors(pid_t pid) {
    std::vector<std::pair<int, std::string>> found;
    for (const std::string& fd : entries(proc_path(pid, "fd")))
        found.emplace_back(std::stoi(fd), fd_target(pid, fd));
    return found;
}

std::vector<int> epoll_watch_counts(pid_t pid) {
    std::vector<int> counts;
    for (const auto& [fd, target] : descriptors(pid))
        if (target == "anon_inode:[eventpoll]")
            counts.push_back(static_cast<int>(fdinfo_values(pid, fd, "tfd:").size()));
    std::sort(counts.begin(), counts.end());
    return counts;
}

std::vector<long> socket_flags(pid_t pid) {
    std::vector<long> flags;
    for (const auto& [fd, target] : descriptors(pid))
        if (target.starts_with("socket:"))
            for (const std::string& value : fdinfo_values(pid, fd, "flags:"))
                flags.push_back(std::stol(value, nullptr, 8));
    return flags;
}

char process_state(pid_t pid) {
    std::ifstream stat(proc_path(pid, "stat"));
    std::string line;
    std::getline(stat, line);
    // The command name (field 2) may hold spaces: count from its ')'.
    std::size_t close_paren = line.rfind(')');
    return close_paren != std::string::npos && close_paren + 2 < line.size() ? line[close_paren + 2]
                                                                             : '?';
}

long rss_kib(pid_t pid) {
    std::ifstream status(proc_path(pid, "status"));
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    return -1;
}

int open_sockets(pid_t pid) {
    int total = 0;
    for (pid_t p : process_tree(pid))
        for (const std::string& fd : entries(proc_path(p, "fd")))
            if (fd_target(p, fd).starts_with("socket:")) ++total;
    return total;
}

std::string describe_fds(pid_t pid) {
    std::string text;
    for (pid_t p : process_tree(pid))
        for (const std::string& fd : entries(proc_path(p, "fd")))
            text += std::to_string(p) + ": " + fd + " -> " + fd_target(p, fd) + "\n";
    return text;
}

double cpu_seconds(pid_t pid) {
    unsigned long long ticks = 0;
    for (pid_t p : process_tree(pid)) {
        std::ifstream stat(proc_path(p, "stat"));
        std::string line;
        std::getline(stat, line);
        // The command name (field 2) may hold spaces: count from its ')'.
        std::size_t close_paren = line.rfind(')');
        if (close_paren == std::string::npos) continue;
        std::istringstream fields(line.substr(close_paren + 2));
        std::string field;
        for (int i = 3; fields >> field && i <= 15; ++i)  // 14: utime, 15: stime
            if (i >= 14) ticks += std::stoull(field);
    }
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double cpu_used_during(pid_t pid, std::chrono::milliseconds interval) {
    double before = cpu_seconds(pid);
    std::this_thread::sleep_for(interval);
    return cpu_seconds(pid) - before;
}

namespace {

// TCP sockets on local port `port` in `state` (as /proc/net/tcp writes it:
// "0A" LISTEN, "08" CLOSE_WAIT), over IPv4 and IPv6.
int tcp_sockets(std::uint16_t port, const std::string& state) {
    // Each line: "sl local_address rem_address st ...", addresses as
    // HEX_IP:HEX_PORT, the state in hex.
    int count = 0;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, socket_state;
            fields >> slot >> local >> remote >> socket_state;
            std::size_t colon = local.rfind(':');
            if (colon == std::string::npos) continue;
            if (std::stoul(local.substr(colon + 1), nullptr, 16) == port && socket_state == state)
                ++count;
        }
    }
    return count;
}

}  // namespace

int close_wait_sockets(std::uint16_t port) {
    return tcp_sockets(port, "08");
}

int listening_sockets(std::uint16_t port) {
    return tcp_sockets(port, "0A");
}

}  // namespace testkit
