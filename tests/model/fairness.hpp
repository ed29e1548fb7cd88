// A scenario shared by the model tests of the level-triggered loops that
// send file bodies (stages 05-08 and 11): a client fast enough never to fill
// its socket must not keep the loop to itself.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "model.hpp"

extern std::string g_server;

namespace model {

// A client that reads as fast as we write never fills its socket, so a
// flush() that writes until EAGAIN would serve it its whole file while the
// others wait. One client downloads a 4 GiB file (a hole on tmpfs: cheap to
// make and to read) in a thread of its own, reading as fast as it can; once
// 1 MiB has come, another client asks for an echo. A loop whose turns are
// capped (Outbox::write_budget) answers within a few MiB; one that is not
// answers when the download is over. (The margin is seconds of downloading:
// only a test thread kept off the CPU that long could misjudge a fair loop.)
inline void check_fast_downloader_shares(const std::vector<std::string>& args) {
    constexpr std::uint64_t size = 4ull << 30;
    TempTree root("model", /*prefer_tmpfs=*/true);
    root.sparse_file("huge.bin", size);
    ServerProcess server(g_server, with(args, {"--root", root.path()}));
    iolab::Fd downloader = connect_to(server.port());
    iolab::Fd other = connect_to(server.port());
    REQUIRE(echo_works(other.get(), "before"));
    REQUIRE(send_all(downloader.get(), "GET /huge.bin\n"));

    std::atomic<std::uint64_t> downloaded{0};
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        std::vector<char> buffer(256 * 1024);
        while (!stop.load()) {
            // Bounded: a stalled server ends the download after 20 s.
            if (!readable_within(downloader.get(), 20s)) return;
            ssize_t n = ::recv(downloader.get(), buffer.data(), buffer.size(), 0);
            if (n <= 0) return;
            downloaded += static_cast<std::uint64_t>(n);
        }
    });
    bool started = eventually([&] { return downloaded.load() >= (1u << 20); });
    std::uint64_t when_asked = downloaded.load();
    bool answered = started && echo_works(other.get(), "meanwhile");
    std::uint64_t when_answered = downloaded.load();
    stop = true;
    ::shutdown(downloader.get(), SHUT_RDWR);  // wakes the reader if it waits
    reader.join();

    INFO("download at the question " << when_asked << " B, at the answer " << when_answered
                                     << " B, of " << size);
    REQUIRE(started);
    CHECK(answered);
    CHECK(when_answered < size);  // answered while the download was under way
    CHECK(server.stop() == 0);
}

}  // namespace model
