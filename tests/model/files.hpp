// What the model tests of the file-sending stages (08, 10) share: a file
// past 4 GiB checked by markers.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "model.hpp"

extern std::string g_server;

namespace model {

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
    TempTree root("model");
    root.sparse_file("huge.bin", size);
    for (std::uint64_t at : spots)
        root.write_at("huge.bin", at, marker(at));
    for (const std::string& copy : copy_paths) {
        DYNAMIC_SECTION("--copy " << copy) {
            ServerProcess server(g_server, {"--root", root.path(), "--copy", copy});
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

// A file truncated to 1 MiB while its 64 MiB `bytes` are being sent, through
// --copy `copy`, to a client with a small window: the body ends early and
// the connection closes (a sendfile or a fill of 0 bytes must close, not
// resubmit for ever; mmap must not die of SIGBUS), nothing spins, and a
// bystander is still served.
inline void check_truncated_mid_send(const std::string& copy, const std::string& bytes) {
    TempTree root("model");
    const std::string path = root.file("shrinking.bin", bytes);
    ServerProcess server(g_server, {"--root", root.path(), "--copy", copy});
    iolab::Fd bystander = connect_to(server.port());
    iolab::Fd client = connect_with_small_window(server.port());
    REQUIRE(bystander);
    REQUIRE(client);
    REQUIRE(send_all(client.get(), "GET /shrinking.bin\n"));
    REQUIRE(read_ok_header(client.get()) == static_cast<long long>(bytes.size()));
    REQUIRE(recv_exactly(client.get(), 64 * 1024) == bytes.substr(0, 64 * 1024));

    REQUIRE(::truncate(path.c_str(), 1 << 20) == 0);  // under the server's feet

    // EOF (or a reset) well before the whole size, not a client waiting for ever.
    std::string rest = recv_until_eof(client.get(), 20s);
    CHECK(64 * 1024 + rest.size() < bytes.size());
    CHECK(closed_by_peer(client.get(), 100ms));         // EOF, not a timeout
    CHECK(cpu_used_during(server.pid(), 500ms) < 0.3);  // no retrying for ever
    CHECK(echo_works(bystander.get(), "still here"));
    CHECK(server.stop() == 0);
}

}  // namespace model
