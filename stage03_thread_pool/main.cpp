// stage03_thread_pool: a fixed pool of threads, fed by a bounded queue.
//
// The model: --threads workers, started once, each running stage01's blocking
// serve() on a socket the main thread accepted and queued; --queue more may
// wait, and past that a newcomer gets ERR 503 busy. The cost: a thread per
// client being served, and a lock on what the threads share (the queue).
//
//   serve()     stage01's, unchanged
//   WorkerPool  the workers and the queue: try_push(), work(), stop()
//   main()      accept, queue or refuse, repeat

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

// iolab:shared BEGIN blocking-serve
// Serves one client until it leaves, says QUIT, runs out of time, or the
// server is stopping.
void serve(iolab::Fd client, const iolab::DocRoot& root, const iolab::Timeouts& timeouts) {
    iolab::WakeOnStop wake(client.get());  // a stop must not wait for this client to speak
    iolab::SocketTimeouts deadlines(client.get(), timeouts);  // SO_SNDTIMEO, SO_RCVTIMEO
    iolab::Session session(root);
    iolab::Outbox outbox;
    char buffer[16 * 1024];
    for (;;) {
        // Answer every complete request already received, in order. On a
        // blocking socket flush() returns only when all is written (ok), the
        // client is gone (closed), or it read nothing for --send-timeout
        // (would_block): then reset, do not leave the kernel our unsent bytes.
        while (std::optional<iolab::Response> response = session.next_response()) {
            outbox.push(std::move(*response));
            iolab::Io sent = outbox.flush(client.get());
            if (sent == iolab::Io::would_block) iolab::reset_on_close(client.get());
            if (sent != iolab::Io::ok) return;
        }
        if (session.finished()) break;

        // Block until the client sends more, closes, resets, or runs out of
        // time (--idle-timeout, or --request-timeout once a request has begun).
        if (!deadlines.before_read(session)) return;
        iolab::IoResult got = iolab::read_some(client.get(), buffer);
        if (got.status == iolab::Io::eof)
            session.feed_eof();
        else if (got.status == iolab::Io::ok)
            session.feed({buffer, got.bytes});
        else
            return;  // reset, timed out (would_block), or interrupted by SIGTERM
    }
    iolab::close_gently(std::move(client));
}
// iolab:shared END blocking-serve

// The workers and the queue of accepted sockets waiting for them. One mutex
// guards the queue and the counts.
class WorkerPool {
public:
    WorkerPool(int threads, std::size_t queue_capacity, const iolab::DocRoot& root,
               const iolab::Timeouts& timeouts)
        : idle_(static_cast<std::size_t>(threads)),
          capacity_(queue_capacity),
          root_(root),
          timeouts_(timeouts) {
        try {
            for (int i = 0; i < threads; ++i)
                workers_.emplace_back([this] { work(); });
        } catch (...) {
            stop();  // could not start them all: join those that did start
            throw;
        }
    }
    ~WorkerPool() { stop(); }

    // Queues an accepted socket for the next free worker. Never blocks: when
    // `capacity` clients already wait for a worker (beyond those an idle
    // worker is about to take), it returns false and the socket stays with
    // the caller.
    bool try_push(iolab::Fd& socket) {
        // iolab:lab BEGIN try-push
        // iolab:lab TODO the bounded queue: under the mutex, refuse (return false) once
        // iolab:lab TODO `capacity_` clients wait beyond the idle workers; else queue the socket
        // iolab:lab TODO and wake a worker
        // iolab:lab STUB static_cast<void>(socket);
        // iolab:lab STUB return false;
        {
            std::lock_guard lock(mutex_);
            if (queue_.size() >= capacity_ + idle_) return false;
            queue_.push_back(std::move(socket));
        }
        ready_.notify_one();  // wake one worker waiting in work()
        return true;
        // iolab:lab END try-push
    }

    // Wakes every worker and joins them. A worker blocked in read() or
    // write() on a client is woken by the shutdown() of its socket (guarded
    // by serve()'s WakeOnStop): the SIGTERM handler has done it already, and
    // request_stop() does it here on an error path. read() then returns 0,
    // write() fails. The sockets still queued are closed unserved.
    void stop() {
        // iolab:lab BEGIN stop
        // iolab:lab TODO stopping: tell the workers (stopping_, under the mutex), drop the queued
        // iolab:lab TODO sockets, wake every worker, join them all
        // iolab:lab STUB for (std::thread& worker : workers_)
        // iolab:lab STUB     if (worker.joinable()) worker.join();
        iolab::request_stop();
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            queue_.clear();
        }
        ready_.notify_all();
        for (std::thread& worker : workers_)
            if (worker.joinable()) worker.join();
        // iolab:lab END stop
    }

private:
    void work() {
        ::pthread_setname_np(::pthread_self(), "worker");  // as ps -L and top -H show it
        // iolab:lab BEGIN work
        // iolab:lab TODO the workers: sleep on ready_ until a socket is queued or the pool stops;
        // iolab:lab TODO take the front socket, serve() it outside the lock, count idle_ right
        for (;;) {
            iolab::Fd client;
            {
                // Sleep until a socket is queued or we are stopping. The
                // predicate is checked under the lock, so no wake-up is lost.
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (stopping_) return;
                client = std::move(queue_.front());
                queue_.pop_front();
                --idle_;
            }
            serve(std::move(client), root_, timeouts_);
            std::lock_guard lock(mutex_);
            ++idle_;
        }
        // iolab:lab END work
    }

    std::mutex mutex_;
    std::condition_variable ready_;  // a socket was queued, or we are stopping
    std::deque<iolab::Fd> queue_;    // accepted, waiting for a worker
    std::size_t idle_;               // workers not serving anyone
    bool stopping_ = false;
    const std::size_t capacity_;
    const iolab::DocRoot& root_;
    const iolab::Timeouts timeouts_;
    std::vector<std::thread> workers_;  // last: started once the rest exists
};

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage03_thread_pool",
                           "A fixed pool of worker threads fed by a bounded queue of sockets.",
                           9003);
    int threads = 16;
    int queue_capacity = 64;
    // At most 1024: serve()'s WakeOnStop can guard that many sockets at once.
    cli.add_flag("--threads", "worker threads: clients served at once", threads, 1, 1024);
    cli.add_flag("--queue", "accepted clients that may wait for a worker; more get ERR 503 busy",
                 queue_capacity, 1, 65536);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());

        // A signal goes to any thread that does not block it. Block SIGINT
        // and SIGTERM while the workers start (a new thread inherits the
        // mask), then unblock them here: only the main thread, the one in
        // accept(), hears a stop.
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
        WorkerPool pool(threads, static_cast<std::size_t>(queue_capacity), root, options.timeouts);
        ::pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
        iolab::announce_listening(options, listener.get());

        while (!iolab::stop_requested()) {
            // Blocks until a client connects. Returns no socket when we are
            // stopping, or when the client was refused for lack of descriptors.
            iolab::Accepted accepted = iolab::accept_connection(listener.get());
            if (accepted.socket && !pool.try_push(accepted.socket))
                iolab::refuse_busy(std::move(accepted.socket));  // the queue is full
        }
        pool.stop();
        iolab::print_summary("stage03_thread_pool");
        return 0;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
