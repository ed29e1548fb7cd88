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

#include "support.hpp"
#include "timeouts.hpp"

extern std::string g_server;
using namespace model;

namespace {

const std::vector<std::string> copy_paths{"sendfile", "splice", "mmap", "read"};

// A temporary document root, removed at the end.
struct TempRoot {
    std::filesystem::path path;
    TempRoot() {
        char name[] = "/tmp/iolab-stage08-XXXXXX";
        path = mkdtemp(name);
    }
    ~TempRoot() { std::filesystem::remove_all(path); }
};

// A marker of 16 distinct bytes that says where it was written.
std::string marker(std::uint64_t offset) {
    char text[17];
    std::snprintf(text, sizeof text, "@%-15llu", static_cast<unsigned long long>(offset));
    return std::string(text, 16);
}

// Reads one `OK <size>\n` reply header; returns the size, or -1.
long long read_ok_header(int fd) {
    std::string header = recv_line(fd);
    if (!header.starts_with("OK ")) return -1;
    return std::stoll(header.substr(3));
}

}  // namespace

TEST_CASE("files past 2 GiB and 4 GiB arrive whole, with the right bytes at the boundaries") {
    TempRoot root;
    const std::uint64_t size = (4ull << 30) + 12345;  // a little over 4 GiB, mostly a hole
    // Markers straddle every boundary a 32-bit or a per-call limit would break.
    const std::vector<std::uint64_t> spots{
        0, 0x7ffff000ull - 8, (2ull << 30) - 8, (3ull << 30) + 12345, (4ull << 30) - 8, size - 16};
    {
        iolab::Fd file(open((root.path / "huge.bin").c_str(), O_CREAT | O_WRONLY, 0644));
        REQUIRE(file);
        REQUIRE(ftruncate(file.get(), static_cast<off_t>(size)) == 0);  // sparse: no disk used
        for (std::uint64_t at : spots)
            REQUIRE(pwrite(file.get(), marker(at).data(), 16, static_cast<off_t>(at)) == 16);
    }

    for (const std::string& copy : copy_paths) {
        DYNAMIC_SECTION("--copy " << copy) {
            ServerProcess server(g_server, {"--root", root.path.string(), "--copy", copy});
            iolab::Fd client = connect_to(server.port());
            REQUIRE(client);
            REQUIRE(send_all(client.get(), "GET /huge.bin\n"));
            REQUIRE(read_ok_header(client.get()) == static_cast<long long>(size));

            // Stream the body through a buffer, keeping only the bytes at the markers.
            std::vector<std::string> seen(spots.size());
            std::vector<char> buffer(1 << 20);
            std::uint64_t received = 0;
            while (received < size) {
                if (!readable_within(client.get(), std::chrono::seconds(20))) break;
                ssize_t n = recv(client.get(), buffer.data(),
                                 std::min<std::uint64_t>(buffer.size(), size - received), 0);
                if (n <= 0) break;
                auto chunk_end = received + static_cast<std::uint64_t>(n);
                for (std::size_t i = 0; i < spots.size(); ++i) {
                    std::uint64_t begin = std::max(spots[i], received);
                    std::uint64_t end = std::min(spots[i] + 16, chunk_end);
                    if (begin < end)
                        seen[i].append(buffer.data() + (begin - received), end - begin);
                }
                received = chunk_end;
            }
            CHECK(received == size);
            for (std::size_t i = 0; i < spots.size(); ++i) {
                INFO("marker at offset " << spots[i]);
                CHECK(seen[i] == marker(spots[i]));
            }
            // The connection is still in step: the next request is answered.
            CHECK(echo_works(client.get(), "after 4 GiB"));
        }
    }
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
