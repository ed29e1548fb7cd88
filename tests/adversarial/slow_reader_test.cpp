// Slow readers: clients that ask for a lot and never read the replies.
//
// Each one has a tiny receive window and pipelines 50 GETs of a 16 MiB file
// (800 MiB of replies), then reads nothing. A server must throttle such a
// client (stop reading its requests once its replies back up) instead of
// queueing replies for it: its memory stays bounded, and everyone else is
// still served. The model decides how: an event loop parks the connection,
// a thread or a process per client blocks in write(). stage01's one thread
// blocks too, so nobody else is served until the slow reader leaves: that is
// its model's limit (--serial), checked as such.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "adversarial.hpp"

using namespace adversarial;

namespace {

constexpr long allowed_growth_kib = 64 * 1024;  // generous: the ASan build's allocator
constexpr int tiny_window = 4096;

std::string fifty_big_gets() {
    std::string requests;
    for (int i = 0; i < 50; ++i)
        requests += i % 2 && !options().http_only
                        ? "GET body16.bin\n"
                        : "GET /body16.bin HTTP/1.1\r\nHost: iolab\r\n\r\n";
    return requests;
}

void check_served(Connection& c, const std::string& who) {
    if (options().http_only) {
        CHECK(answers(c, who));
        return;
    }
    std::string reply = line_exchange(c, "ECHO " + who);
    CHECK(printable(reply) == printable(who + "\n"));
    LineGetReply hello = line_get(c, "hello.txt");
    CHECK(compare_bytes(hello.body, document_root().hello_txt) == "same");
}

}  // namespace

TEST_CASE("slow readers: memory stays bounded, and other clients are still served",
          "[slow-reader]") {
    Server s;
    {
        Connection warm_up = s.connect();
        check_served(warm_up, "warm up");
    }
    long memory_before = s.measurable() ? memory_kib(s.pid()) : 0;

    // A serial server blocks on its one slow reader; the others would wait in
    // the backlog without ever being read: one is enough to show the limit.
    std::vector<Connection> slow;
    for (int i = 0; i < (expect().serial ? 1 : 4); ++i) {
        slow.push_back(s.connect(tiny_window));
        slow.back().send(fifty_big_gets());
    }
    std::this_thread::sleep_for(500ms);  // time for the server to fill every buffer it will

    Connection other = s.connect();
    if (expect().serial) {
        other.send(options().http_only ? "GET /hello.txt HTTP/1.1\r\nHost: iolab\r\n\r\n"
                                       : "ECHO other\n");
        std::string too_early = other.read_for(500ms);
        CHECK(printable(too_early) == printable(""));  // the model's limit: one client at a time
    } else {
        check_served(other, "other");
        if (!s.measurable()) {
            NOT_CHECKED("the server does not spin", "--connect: no process to measure");
        } else if (!expect().busy_polls) {
            double cpu = cpu_used_during(s.pid(), 500ms);
            INFO("CPU seconds used in 0.5 s while the slow readers are parked: " << cpu);
            CHECK(cpu < 0.25);
        }
    }
    if (s.measurable()) {
        long grown = memory_kib(s.pid()) - memory_before;
        INFO("server memory grew by " << grown << " KiB with " << slow.size()
                                      << " slow readers owed 800 MiB each");
        CHECK(grown < allowed_growth_kib);
    } else {
        NOT_CHECKED("the server's memory stays bounded", "--connect: no process to measure");
    }

    slow.clear();  // with unread replies: resets
    if (expect().serial) {
        if (options().http_only) {
            HttpResponse r = read_http_response(other);  // its turn has come
            CHECK(compare_bytes(r.body, document_root().hello_txt) == "same");
        } else {
            std::string reply = other.read_line();  // its turn has come
            CHECK(printable(reply) == printable("other\n"));
        }
    }
    other.close();
    s.check_alive_then_stop();
}
