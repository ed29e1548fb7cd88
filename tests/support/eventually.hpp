// Waiting for a condition, bounded: the one way a test waits for a server.
#pragma once

#include <chrono>
#include <thread>

namespace testkit {

// Waits until `condition()` holds, checking every 20 ms for at most
// `timeout`, and returns its last value: for things that settle (a child
// being reaped, a descriptor being closed), never to time a server.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace testkit
