// A file past 2 GiB: 2^31 is where a signed 32-bit offset or length wraps
// (an `int` holding a file size, a `%d`, an off_t built without large-file
// support). The file is sparse, so it costs no disk; markers written at
// the boundaries say where they are, so a body that skips, repeats or
// truncates a region shows at once.
//
// Tagged [large-file]: stage08 registers the suite without it, since its
// model test already sends a file past 4 GiB through each of its --copy paths.
#include <catch2/catch.hpp>
#include <cctype>
#include <string>
#include <vector>

#include "adversarial.hpp"

using namespace adversarial;

TEST_CASE("large file: a sparse file past 2 GiB arrives whole, right at the boundaries",
          "[large-file]") {
    const std::vector<std::uint64_t> spots = huge_marker_offsets();
    Server s;
    {
        Connection c = s.connect();
        if (options().http_only) {
            // The head alone: the body is streamed below, never held whole.
            c.send("GET /huge.bin HTTP/1.1\r\nHost: iolab\r\n\r\n");
            std::string head = c.read_until("\r\n\r\n");
            INFO("response head: " << printable(head, 600));
            REQUIRE(head.starts_with("HTTP/1.1 200 "));
            std::string length = "\r\ncontent-length: " + std::to_string(huge_size) + "\r\n";
            std::string lower = head;
            for (char& ch : lower)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            REQUIRE(lower.find(length) != std::string::npos);
        } else {
            std::string status = line_exchange(c, "GET huge.bin");
            REQUIRE(printable(status) == printable("OK " + std::to_string(huge_size) + "\n"));
        }

        // Stream the body, keeping only the bytes where the markers are.
        std::vector<std::string> seen(spots.size());
        std::uint64_t received = 0;
        while (received < huge_size) {
            std::string chunk = c.read_some(static_cast<std::size_t>(
                std::min<std::uint64_t>(std::uint64_t{1} << 20, huge_size - received)));
            std::uint64_t chunk_end = received + chunk.size();
            for (std::size_t i = 0; i < spots.size(); ++i) {
                std::uint64_t begin = std::max(spots[i], received);
                std::uint64_t end = std::min(spots[i] + 16, chunk_end);
                if (begin < end) seen[i] += chunk.substr(begin - received, end - begin);
            }
            received = chunk_end;
        }
        for (std::size_t i = 0; i < spots.size(); ++i) {
            INFO("the marker at offset " << spots[i]);
            CHECK(printable(seen[i]) == printable(huge_marker(spots[i])));
        }
        // Still in step: the next request is answered.
        CHECK(answers(c, "after 2 GiB"));
    }
    s.check_alive_then_stop();
}
