// What the model tests of the file-sending stages (08, 10) share: a
// temporary document root, and a file past 4 GiB checked by markers.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"

extern std::string g_server;

namespace model {

// A temporary document root, removed at the end.
struct TempRoot {
    std::filesystem::path path;
    TempRoot() {
        char name[] = "/tmp/iolab-model-XXXXXX";
        path = ::mkdtemp(name);
    }
    ~TempRoot() { std::filesystem::remove_all(path); }
    TempRoot(const TempRoot&) = delete;
    TempRoot& operator=(const TempRoot&) = delete;
};

// A marker of 16 distinct bytes that says where it was written.
inline std::string marker(std::uint64_t offset) {
    char text[17];
    std::snprintf(text, sizeof text, "@%-15llu", static_cast<unsigned long long>(offset));
    return std::string(text, 16);
}

// Reads one `OK <size>\n` reply header; returns the size, or -1.
inline long long read_ok_header(int fd) {
    std::string header = recv_line(fd);
    if (!header.starts_with("OK ")) return -1;
    return std::stoll(header.substr(3));
}

// A sparse file of `size` bytes (mostly a hole: no disk used) with a marker
// at each of `spots`, served by each --copy path in turn: every byte must
// arrive, the markers where they were written, and the connection stay in
// step. The spots straddle the boundaries a 32-bit or a per-call limit would break.
inline void check_marked_huge_file(const std::vector<std::string>& copy_paths, std::uint64_t size,
                                   const std::vector<std::uint64_t>& spots) {
    TempRoot root;
    {
        iolab::Fd file(::open((root.path / "huge.bin").c_str(), O_CREAT | O_WRONLY, 0644));
        REQUIRE(file);
        REQUIRE(::ftruncate(file.get(), static_cast<off_t>(size)) == 0);
        for (std::uint64_t at : spots)
            REQUIRE(::pwrite(file.get(), marker(at).data(), 16, static_cast<off_t>(at)) == 16);
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
                ssize_t n = ::recv(client.get(), buffer.data(),
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

}  // namespace model
