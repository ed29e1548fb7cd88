// Looking at a server from the outside, through /proc: what it costs
// (memory, descriptors, CPU time) and what it left behind (sockets in
// CLOSE_WAIT). A probe covers the whole process tree, so a forking server
// (stage02) is measured with its children, as `ps` would show it, unless
// its comment says it looks at one process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace testkit {

// `pid` and its descendants (from /proc/PID/task/TID/children), parents first.
std::vector<pid_t> process_tree(pid_t pid);
// The children of process `pid` alone, forked by any of its threads, zombies
// included.
std::vector<pid_t> child_pids(pid_t pid);

// The threads of process `pid` alone (/proc/PID/task), and their names
// (/proc/PID/task/TID/comm, as a server sets them with pthread_setname_np).
int thread_count(pid_t pid);
std::vector<std::string> thread_names(pid_t pid);

// Memory of the tree in KiB: the sum of each process's proportional set
// size (Pss in /proc/PID/smaps_rollup). For one process that is its resident
// memory (VmRSS) less its share of libraries; unlike VmRSS, it counts a page
// that a forked child still shares with its parent once, not once per child.
long memory_kib(pid_t pid);

// Open descriptors of the tree: the entries of every /proc/PID/fd.
int open_fds(pid_t pid);
// Those of them that are sockets (a server at rest has one: its listener).
int open_sockets(pid_t pid);
// Open descriptors of process `pid` alone: the parent of a process-per-client
// server must hold no client's socket while its children do.
int own_open_fds(pid_t pid);

// What the tree's descriptors are ("4 -> socket:[1234]", one per line), to
// show in a failure message which ones were left open.
std::string describe_fds(pid_t pid);

// Process `pid`'s own descriptors, each with what it is: a path,
// "socket:[INODE]", "anon_inode:[eventpoll]", "anon_inode:[io_uring]"...
std::vector<std::pair<int, std::string>> descriptors(pid_t pid);
// For each epoll instance process `pid` holds, how many descriptors it
// watches (the `tfd:` lines of its /proc/PID/fdinfo entry), smallest first.
std::vector<int> epoll_watch_counts(pid_t pid);
// The file status flags (the octal `flags:` of /proc/PID/fdinfo/N: O_NONBLOCK,
// O_ASYNC...) of every socket process `pid` holds.
std::vector<long> socket_flags(pid_t pid);

// The state letter of process `pid` in /proc/PID/stat: R, S, T (stopped),
// Z (a zombie)...; '?' once it is gone.
char process_state(pid_t pid);
// Resident memory of process `pid` alone in KiB (VmRSS), or -1.
long rss_kib(pid_t pid);

// CPU seconds (user + system) the tree has used, from /proc/PID/stat.
double cpu_seconds(pid_t pid);

// CPU seconds the tree uses while the caller sleeps for `interval`: an idle
// server uses about 0, one that spins about `interval` (per spinning thread).
double cpu_used_during(pid_t pid, std::chrono::milliseconds interval);

// TCP sockets on local port `port` in the CLOSE_WAIT state (the peer closed,
// we did not): /proc/net/tcp and tcp6, as `ss -tan state close-wait` shows them.
int close_wait_sockets(std::uint16_t port);
// TCP sockets listening on local port `port`: one per SO_REUSEPORT listener.
int listening_sockets(std::uint16_t port);

}  // namespace testkit
