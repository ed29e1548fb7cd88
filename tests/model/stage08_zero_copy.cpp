// stage08_zero_copy's model: every --copy path at the edges that break real
// servers. Files past 2 GiB and 4 GiB (sendfile moves at most 0x7ffff000
// bytes a call; 32-bit offsets wrap at 4 GiB), checked at the boundaries in
// sparse files; a file truncated while it is being sent (sendfile returning
// 0 must close, not spin; the mmap path must not die of SIGBUS). The limit
// on unsent bytes (--unsent-limit, TCP_NOTSENT_LOWAT), read back from the
// server's own socket, and files sent whole under a tiny one.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "fairness.hpp"
#include "files.hpp"
#include "model.hpp"
#include "timeout_checks.hpp"

extern std::string g_server;
using namespace model;

namespace {

const std::vector<std::string> copy_paths{"sendfile", "splice", "mmap", "read", "direct"};

std::uint16_t local_port(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
    return ntohs(address.sin_port);
}

std::uint16_t peer_port(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
    return ntohs(address.sin_port);
}

// The server's own descriptor for its end of `client`'s connection, borrowed
// with pidfd_getfd(2): the test started the server, so it may. Invalid if none.
iolab::Fd server_end_of(pid_t server, int client) {
    iolab::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, server, 0)));
    REQUIRE(pidfd);
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(server) + "/fd")) {
        int number = std::stoi(entry.path().filename().string());
        iolab::Fd borrowed(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), number, 0)));
        if (borrowed && peer_port(borrowed.get()) == local_port(client)) return borrowed;
    }
    return iolab::Fd();
}

}  // namespace

TEST_CASE("--unsent-limit sets TCP_NOTSENT_LOWAT on every connection; 0 leaves the kernel's") {
    const std::vector<std::pair<std::vector<std::string>, int>> cases{
        {{}, 128 * 1024}, {{"--unsent-limit", "4096"}, 4096}, {{"--unsent-limit", "0"}, 0}};
    for (const auto& [args, expected] : cases) {
        DYNAMIC_SECTION("args: " << (args.empty() ? "(default)" : args[1])) {
            ServerProcess server(g_server, args);
            iolab::Fd client = connect_to(server.port());
            REQUIRE(client);
            REQUIRE(echo_works(client.get(), "accepted"));  // the server holds its end now
            iolab::Fd server_end = server_end_of(server.pid(), client.get());
            REQUIRE(server_end);
            int value = -1;
            socklen_t length = sizeof value;
            REQUIRE(::getsockopt(server_end.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value,
                                 &length) == 0);
            CHECK(value == expected);
        }
    }
}

TEST_CASE("under a tiny --unsent-limit every copy path sends files whole, level and edge") {
    const std::size_t size = 8u << 20;
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        content[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    TempTree root("model");
    root.file("big.bin", content);
    for (const char* trigger : {"level", "edge"}) {
        for (const std::string& copy : copy_paths) {
            DYNAMIC_SECTION("--trigger " << trigger << " --copy " << copy) {
                ServerProcess server(g_server, {"--root", root.path(), "--trigger", trigger,
                                                "--copy", copy, "--unsent-limit", "2048"});
                iolab::Fd client = connect_to(server.port());
                REQUIRE(client);
                for (int round = 0; round < 2; ++round) {  // and the connection stays in step
                    REQUIRE(send_all(client.get(), "GET /big.bin\n"));
                    REQUIRE(read_ok_header(client.get()) == static_cast<long long>(size));
                    CHECK(recv_exactly(client.get(), size, 30s) == content);
                }
                CHECK(server.stop() == 0);
            }
        }
    }
}

TEST_CASE("files past 2 GiB and 4 GiB arrive whole, with the right bytes at the boundaries") {
    const std::uint64_t size = (4ull << 30) + 12345;  // a little over 4 GiB, mostly a hole
    check_marked_huge_file(copy_paths, size,
                           {0, 0x7ffff000ull - 8, (2ull << 30) - 8, (3ull << 30) + 12345,
                            (4ull << 30) - 8, size - 16});
}

TEST_CASE("a file truncated while it is sent closes that connection, and only that one") {
    const std::size_t size = 64u << 20;
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        content[i] = static_cast<char>('a' + i % 26);
    for (const std::string& copy : copy_paths) {
        DYNAMIC_SECTION("--copy " << copy) {
            check_truncated_mid_send(copy, content);
        }
    }
}

TEST_CASE("a downloader that keeps up does not starve the others, whatever the copy path") {
    for (const std::string& copy : copy_paths) {
        INFO("--copy " << copy);
        check_fast_downloader_shares({"--copy", copy});
    }
}

TEST_CASE("timeouts close a slow, silent or non-reading client; others are served") {
    check_timeouts({}, Model::concurrent);
}

TEST_CASE("a client that stops reading is reset after --send-timeout, whatever the copy path") {
    for (const std::string& copy : copy_paths) {
        DYNAMIC_SECTION("--copy " << copy) {
            check_send_timeout({"--copy", copy}, Model::concurrent);
        }
    }
}
