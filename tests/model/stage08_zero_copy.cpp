// stage08_zero_copy's model: every --copy path at the edges that break real
// servers. Files past 2 GiB and 4 GiB (sendfile moves at most 0x7ffff000
// bytes a call; 32-bit offsets wrap at 4 GiB), checked at the boundaries in
// sparse files; a file truncated while it is being sent (sendfile returning
// 0 must close, not spin; the mmap path must not die of SIGBUS).
#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "files.hpp"
#include "support.hpp"
#include "timeouts.hpp"

extern std::string g_server;
using namespace model;

namespace {

const std::vector<std::string> copy_paths{"sendfile", "splice", "mmap", "read", "direct"};

}  // namespace

TEST_CASE("files past 2 GiB and 4 GiB arrive whole, with the right bytes at the boundaries") {
    const std::uint64_t size = (4ull << 30) + 12345;  // a little over 4 GiB, mostly a hole
    check_marked_huge_file(copy_paths, size,
                           {0, 0x7ffff000ull - 8, (2ull << 30) - 8, (3ull << 30) + 12345,
                            (4ull << 30) - 8, size - 16});
}

TEST_CASE("a file truncated while it is sent closes that connection, and only that one") {
    TempRoot root;
    const std::size_t size = 64u << 20;
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        content[i] = static_cast<char>('a' + i % 26);

    for (const std::string& copy : copy_paths) {
        DYNAMIC_SECTION("--copy " << copy) {
            std::filesystem::path path = root.path / "shrinking.bin";
            {
                iolab::Fd file(open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644));
                REQUIRE(write(file.get(), content.data(), size) == static_cast<ssize_t>(size));
            }
            ServerProcess server(g_server, {"--root", root.path.string(), "--copy", copy});
            iolab::Fd bystander = connect_to(server.port());
            iolab::Fd client = connect_with_small_window(server.port());
            REQUIRE(bystander);
            REQUIRE(client);
            REQUIRE(send_all(client.get(), "GET /shrinking.bin\n"));
            REQUIRE(read_ok_header(client.get()) == static_cast<long long>(size));
            REQUIRE(recv_exactly(client.get(), 64 * 1024).size() == 64 * 1024);

            // Cut the file to 1 MiB under the server's feet.
            REQUIRE(truncate(path.c_str(), 1 << 20) == 0);

            // The server must end this body early and close: the client sees
            // EOF (or a reset) well before 64 MiB, instead of waiting forever.
            std::string rest = recv_until_eof(client.get(), std::chrono::seconds(20));
            CHECK(64 * 1024 + rest.size() < size);
            CHECK(closed_by_peer(client.get(),
                                 std::chrono::milliseconds(100)));  // EOF, not a timeout
            // It does not spin, did not die (of SIGBUS or otherwise), and
            // everyone else is still served.
            CHECK(cpu_used_during(server.pid(), std::chrono::milliseconds(500)) < 0.3);
            CHECK(echo_works(bystander.get(), "still here"));
            CHECK(server.stop() == 0);
        }
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
