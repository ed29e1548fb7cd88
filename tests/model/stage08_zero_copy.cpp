// stage08_zero_copy's model: every --copy path at the edges that break real
// servers. Files past 2 GiB and 4 GiB (sendfile moves at most 0x7ffff000
// bytes a call; 32-bit offsets wrap at 4 GiB), checked at the boundaries in
// sparse files; a file truncated while it is being sent (sendfile returning
// 0 must close, not spin; the mmap path must not die of SIGBUS).
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "fairness.hpp"
#include "files.hpp"
#include "model.hpp"
#include "timeout_checks.hpp"

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
