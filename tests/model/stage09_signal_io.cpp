// stage09_signal_io's model: every socket armed to signal (O_ASYNC, the
// signals blocked and waited for), thousands of connections served by one
// signal per event, and the weak point of the model made to happen for
// real: a queue of real-time signals that overflows, after which the kernel
// sends a bare SIGIO and the server must find the lost events itself. Then
// the scenarios shared with the multiplexing stages (descriptors running
// out, clients that do not read, pipelining, timeouts).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <optional>

#include "multiplexing.hpp"
#include "timeout_checks.hpp"

using namespace model;

namespace {

const std::vector<std::string> defaults{};

// A signal mask line of /proc/PID/status ("SigBlk:", "ShdPnd:"...), as bits.
std::uint64_t signal_mask(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field)) return std::stoull(line.substr(field.size()), nullptr, 16);
    return 0;
}

bool has_signal(std::uint64_t mask, int signal) {
    return (mask >> (signal - 1)) & 1;
}

}  // namespace

TEST_CASE("signal I/O: every socket is armed, and its signals are waited for, not handled") {
    ServerProcess server(g_server, defaults);
    std::vector<iolab::Fd> clients = connect_many(server.port(), 100);
    REQUIRE(clients.size() == 100);
    for (iolab::Fd& client : clients)
        REQUIRE(echo_works(client.get(), "hi"));

    // The listener and every client: nonblocking, and signalling (O_ASYNC).
    std::vector<long> flags = socket_flags(server.pid());
    CHECK(flags.size() == 101);
    std::size_t armed = 0;
    for (long f : flags)
        if ((f & O_ASYNC) && (f & O_NONBLOCK)) ++armed;
    CHECK(armed == flags.size());

    // Neither caught nor ignored: sigtimedwait() takes them. (Whether they
    // are blocked shows only while the server is not asleep in
    // sigtimedwait(), which unblocks what it waits for: see the overflow test.)
    std::uint64_t handled =
        signal_mask(server.pid(), "SigCgt:") | signal_mask(server.pid(), "SigIgn:");
    CHECK_FALSE(has_signal(handled, SIGRTMIN));
    CHECK_FALSE(has_signal(handled, SIGIO));

    clients.clear();
    CHECK(eventually([&] { return socket_flags(server.pid()).size() == 1; }));
    CHECK(server.stop() == 0);
}

TEST_CASE("signal I/O: 5000 concurrent connections are all served") {
    check_many_concurrent(defaults, 5000);
}

// The queue of real-time signals overflows for certain: the server is
// stopped (SIGSTOP) while 300 armed clients each send a request, with room
// for 16 queued signals. At most 16 requests can be announced by a signal
// naming their socket; the kernel then sends SIGIO, which must make the
// server try every connection. Everyone is answered, byte for byte.
TEST_CASE("signal I/O: when the signal queue overflows, SIGIO makes the server try everyone") {
    constexpr std::size_t count = 300;
    std::optional<ServerProcess> server;
    {
        // How many signals may be queued for the user, checked against the
        // receiving process's limit: the server inherits it.
        ScopedLimit limit(RLIMIT_SIGPENDING, 16);
        server.emplace(g_server, defaults);
    }
    std::vector<iolab::Fd> clients = connect_many(server->port(), count);
    REQUIRE(clients.size() == count);
    for (std::size_t i = 0; i < count; ++i)
        REQUIRE(echo_works(clients[i].get(), "armed " + std::to_string(i)));

    REQUIRE(kill(server->pid(), SIGSTOP) == 0);
    REQUIRE(eventually([&] { return process_state(server->pid()) == 'T'; }));
    // Stopped, it is out of sigtimedwait(), and its signal mask shows: blocked.
    std::uint64_t blocked = signal_mask(server->pid(), "SigBlk:");
    CHECK(has_signal(blocked, SIGRTMIN));
    CHECK(has_signal(blocked, SIGIO));
    CHECK(has_signal(blocked, SIGTERM));
    for (std::size_t i = 0; i < count; ++i)
        REQUIRE(send_all(clients[i].get(), "ECHO overflow " + std::to_string(i) + "\n"));
    // Pending for the process (F_SETOWN named the process, not a thread).
    CHECK(eventually([&] { return has_signal(signal_mask(server->pid(), "ShdPnd:"), SIGIO); }));
    CHECK(has_signal(signal_mask(server->pid(), "ShdPnd:"), SIGRTMIN));
    REQUIRE(kill(server->pid(), SIGCONT) == 0);

    std::size_t answered = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (recv_line(clients[i].get()) == "overflow " + std::to_string(i) + "\n") ++answered;
    CHECK(answered == count);

    // And afterwards: nothing spins, everyone is still served, one by one.
    CHECK(cpu_used_during(server->pid(), 1000ms) < 0.25);
    std::size_t again = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (echo_works(clients[i].get(), "after " + std::to_string(i))) ++again;
    CHECK(again == count);
    clients.clear();
    CHECK(server->stop() == 0);
}

// Overflow under load rather than while stopped: 2000 clients send at once
// into a queue of 16, so most of their events arrive as SIGIO.
TEST_CASE("signal I/O: 2000 concurrent connections with a signal queue of 16") {
    ScopedLimit limit(RLIMIT_SIGPENDING, 16);  // the server started inside inherits it
    check_many_concurrent(defaults, 2000);
}

TEST_CASE("signal I/O: out of descriptors, newcomers are refused and nothing spins") {
    check_out_of_descriptors(defaults);
}

TEST_CASE("signal I/O: clients that do not read are throttled, others still served") {
    check_slow_readers(defaults);
}

TEST_CASE("signal I/O: pipelined requests then end-of-input are all answered") {
    check_pipelined_then_eof(defaults);
}

TEST_CASE("signal I/O: timeouts close a slow, silent or non-reading client; others are served") {
    check_timeouts(defaults, Model::concurrent);
}
