// What stage10's loop (main.cpp) works with, none of it a system call of its
// own: the ring and its pool of receive buffers, the tag on every operation,
// where a file body waits between file and socket (--copy), and one client's
// state, which only the kernel's results change. The submission and
// completion queues are memory shared with the kernel, so filling in an entry
// or reading a result is a plain memory access; only io_uring_enter() is a
// system call, and one call both submits and waits.
#pragma once

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fd.hpp"
#include "outbox.hpp"
#include "protocol.hpp"
#include "server.hpp"
#include "timeouts.hpp"

// Newer than liburing 2.3's header (kernel 6.2): ask each send_zc notification
// to say whether the kernel had to copy the data after all.
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

namespace proactor {

// io_uring is switched off here: a seccomp filter (Docker's default profile,
// many sandboxes), kernel.io_uring_disabled, or a kernel without it; or the
// kernel lacks a feature the --rung asked for (never a silent step down).
struct Unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --rung: the features in use, each rung adding one to those below it
// (README: "The feature ladder").
enum class Rung {
    plain = 1,         // recv and send into each client's own buffer; fast poll waits
    provided_buffers,  // one pool of buffers for every receive (a buffer ring)
    multishot,         // one receive, armed once, posts a result per arrival
    fixed_files,       // sockets in the ring's file table: no lookup per operation
    defer_taskrun,     // SINGLE_ISSUER | DEFER_TASKRUN: completion work runs when we wait
    send_zc,           // replies leave by zero-copy send
};

// What a completion is about: user_data is (client id << 8) | Op. Client ids
// are never reused, so a late completion can never reach the wrong client.
enum class Op : std::uint8_t {
    accept,          // the multishot accept (id 0)
    listener_ready,  // out of descriptors: a newcomer is waiting (id 0)
    recv,            // a client's bytes arrived
    head,            // a reply's head was sent
    fill,            // file -> pipe (splice) or file -> chunk (read)
    drain,           // pipe -> socket (splice) or chunk -> socket (send, send_zc)
    cancel,          // our IORING_OP_ASYNC_CANCEL itself
};
inline std::uint64_t tag(std::uint64_t id, Op op) {
    return id << 8 | static_cast<std::uint8_t>(op);
}
inline std::uint64_t id_of(std::uint64_t data) {
    return data >> 8;
}
inline Op op_of(std::uint64_t data) {
    return static_cast<Op>(data & 0xff);
}

class Ring {
public:
    static constexpr unsigned entries = 1024;  // SQ entries; the CQ gets twice as many
    // Provided buffers: one pool for every client's receives. A receive that
    // is waiting holds no buffer: the kernel takes one when bytes arrive
    // (IOSQE_BUFFER_SELECT) and we give it back once they are parsed.
    static constexpr unsigned default_buffers = 1024;  // --buffers: a power of two
    static constexpr unsigned buffer_size = 16 * 1024;
    static constexpr int buffer_group = 0;

    Ring(Rung rung, unsigned buffers) : rung_(rung), buffer_count_(buffers) {
        if (buffers == 0 || (buffers & (buffers - 1)) != 0)
            throw std::invalid_argument("--buffers must be a power of two");
        io_uring_params params{};
        // One thread submits and reaps (SINGLE_ISSUER), and the kernel runs
        // completion work only when that thread enters io_uring_enter() to
        // wait (DEFER_TASKRUN), instead of interrupting it at any moment.
        if (uses(Rung::defer_taskrun))
            params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        int rc = io_uring_queue_init_params(entries, &ring_, &params);
        if (rc == -EPERM || rc == -ENOSYS)
            throw Unavailable(std::string("io_uring_setup: ") + std::strerror(-rc) +
                              " (a seccomp filter, or sysctl kernel.io_uring_disabled)");
        if (rc == -EINVAL && params.flags)
            throw missing("IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (Linux 6.1)");
        if (rc < 0) throw std::system_error(-rc, std::system_category(), "io_uring_setup");
        try {
            probe(params);
        } catch (...) {
            io_uring_queue_exit(&ring_);
            throw;
        }
    }
    ~Ring() {
        io_uring_queue_exit(&ring_);
        if (pool_) ::munmap(pool_, pool_bytes());
    }
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    io_uring* get() { return &ring_; }
    bool uses(Rung feature) const { return rung_ >= feature; }

    // A free submission entry, tagged with `data`. The `count` entries of
    // one chain (IOSQE_IO_LINK) need room together: a submit in the middle
    // of a chain would cut it into two chains, run in any order.
    io_uring_sqe* sqe(std::uint64_t data, unsigned count = 1) {
        if (io_uring_sq_space_left(&ring_) < count) io_uring_submit(&ring_);
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (!s) throw std::runtime_error("io_uring submission queue full");
        io_uring_sqe_set_data64(s, data);
        return s;
    }

    // Submits every entry prepared since the last call and waits for one
    // completion, until `deadline` at most (none: for ever), in one
    // io_uring_enter(). A timeout, a signal, a CQ to empty first: not errors.
    void submit_and_wait(std::optional<iolab::Clock::time_point> deadline) {
        io_uring_cqe* cqe = nullptr;
        int rc;
        if (!deadline) {
            rc = io_uring_submit_and_wait(&ring_, 1);
        } else {
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::max(*deadline - iolab::Clock::now(), iolab::Clock::duration{}))
                          .count();
            __kernel_timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
            rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        }
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
            throw std::system_error(-rc, std::system_category(), "io_uring_enter");
    }

    // A receive. From rung 2 it names no buffer: the kernel picks one from
    // the pool when bytes arrive, and says which in the completion's flags.
    // Before, `own` (buffer_size bytes) is pinned while the receive waits.
    void prep_recv(std::uint64_t data, int socket, char* own) {
        io_uring_sqe* s = sqe(data);
        if (!uses(Rung::provided_buffers)) {
            io_uring_prep_recv(s, socket, own, buffer_size, 0);
        } else {
            if (uses(Rung::multishot))
                io_uring_prep_recv_multishot(s, socket, nullptr, 0, 0);  // length 0: the buffer's
            else
                io_uring_prep_recv(s, socket, nullptr, buffer_size, 0);
            s->flags |= IOSQE_BUFFER_SELECT;
            s->buf_group = buffer_group;
        }
        on_socket(s);
    }
    // From rung 4 an operation on a socket names its slot in the file table
    // (the slot is the descriptor's number), not the descriptor.
    void on_socket(io_uring_sqe* s) const {
        if (uses(Rung::fixed_files)) s->flags |= IOSQE_FIXED_FILE;
    }
    // A new client's socket into its slot, and out again before it is closed
    // (the table holds a reference: the socket would outlive close()).
    bool enter(int socket) { return !uses(Rung::fixed_files) || update_slot(socket, socket); }
    void leave(int socket) {
        if (uses(Rung::fixed_files)) update_slot(socket, -1);
    }
    char* buffer(unsigned id) { return pool_ + ring_bytes() + std::size_t{id} * buffer_size; }
    // Puts a provided buffer back in the ring (a store to shared memory);
    // give_back() then hands the kernel all those put back, at the end of a
    // round. Until then a client flooding a multishot receive can take no
    // more than the buffers left: -ENOBUFS ends its receive.
    void recycle(unsigned id) {
        io_uring_buf_ring_add(buffers_, buffer(id), buffer_size, static_cast<unsigned short>(id),
                              io_uring_buf_ring_mask(buffer_count_), static_cast<int>(recycled_++));
    }
    void give_back() {
        if (recycled_ == 0) return;  // also: no pool below rung 2
        io_uring_buf_ring_advance(buffers_, static_cast<int>(recycled_));
        recycled_ = 0;
    }

private:
    std::size_t ring_bytes() const { return buffer_count_ * sizeof(io_uring_buf); }
    std::size_t pool_bytes() const {
        return ring_bytes() + std::size_t{buffer_count_} * buffer_size;
    }

    // What this rung needs, asked of the kernel before any client comes.
    void probe(const io_uring_params& params) {
        if (!(params.features & IORING_FEAT_FAST_POLL))
            throw missing("IORING_FEAT_FAST_POLL (Linux 5.7)");
        std::unique_ptr<io_uring_probe, void (*)(io_uring_probe*)> ops(
            io_uring_get_probe_ring(&ring_), io_uring_free_probe);
        auto lacks = [&](int op) { return !ops || !io_uring_opcode_supported(ops.get(), op); };
        if (lacks(IORING_OP_RECV) || lacks(IORING_OP_SEND) || lacks(IORING_OP_SPLICE))
            throw missing("IORING_OP_RECV, SEND and SPLICE (Linux 5.7)");
        if (uses(Rung::provided_buffers)) provide_buffers();
        // Multishot receive came with Linux 6.0, as did IORING_OP_SEND_ZC, and
        // the probe lists opcodes only: the second stands for the first.
        if (uses(Rung::multishot) && lacks(IORING_OP_SEND_ZC))
            throw missing("multishot receive (Linux 6.0)");
        if (uses(Rung::send_zc) && lacks(IORING_OP_SEND_ZC))
            throw missing("IORING_OP_SEND_ZC (Linux 6.0)");
        if (uses(Rung::fixed_files)) {
            rlimit limit{};
            ::getrlimit(RLIMIT_NOFILE, &limit);  // every descriptor number has a slot
            slots_ = static_cast<unsigned>(std::min<rlim_t>(limit.rlim_cur, 1u << 20));
            if (io_uring_register_files_sparse(&ring_, slots_) < 0)
                throw missing("a sparse registered file table (Linux 5.19)");
        }
    }
    Unavailable missing(const std::string& what) const {
        return Unavailable("--rung " + std::to_string(static_cast<int>(rung_)) + " needs " + what +
                           ", which this kernel does not offer");
    }
    bool update_slot(int slot, int fd) {
        if (slot < 0 || static_cast<unsigned>(slot) >= slots_) return false;
        return io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1) == 1;
    }

    // The ring of buffer addresses, then the buffers, in one anonymous
    // mapping (the ring must be page-aligned). Pages cost memory only once
    // the kernel has written into them.
    void provide_buffers() {
        void* memory = ::mmap(nullptr, pool_bytes(), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap");
        pool_ = static_cast<char*>(memory);
        buffers_ = static_cast<io_uring_buf_ring*>(memory);
        io_uring_buf_ring_init(buffers_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(memory);
        reg.ring_entries = buffer_count_;
        reg.bgid = buffer_group;
        if (int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc == -EINVAL)
            throw missing("provided-buffer rings, io_uring_register_buf_ring (Linux 5.19)");
        else if (rc < 0)
            throw std::system_error(-rc, std::system_category(), "io_uring_register_buf_ring");
        for (unsigned id = 0; id < buffer_count_; ++id)
            recycle(id);
        give_back();
    }

    io_uring ring_{};
    Rung rung_;
    unsigned buffer_count_;
    unsigned slots_ = 0;     // the registered file table's size (rung 4 up)
    unsigned recycled_ = 0;  // buffers put back since the last give_back()
    char* pool_ = nullptr;
    io_uring_buf_ring* buffers_ = nullptr;
};

// --copy: where the pieces of a file body wait between the file and the
// socket. Each piece is a "fill" (file -> here) linked to a "drain" (here ->
// socket); the fill's length is decided when it is submitted.
//
//   splice   file -> pipe -> socket, two IORING_OP_SPLICE: the pipe holds
//            page-cache references, never a copy of the bytes. io_uring runs
//            every splice in a kernel worker thread (io-wq, "iou-wrk-PID"),
//            which sleeps there while the socket is full.
//   read     file -> chunk -> socket, IORING_OP_READ then IORING_OP_SEND: the
//            two copies of stages 01-07, done by the kernel on our behalf.
//   send_zc  file -> chunk (a copy), then IORING_OP_SEND_ZC: the socket
//            borrows the chunk's pages instead of copying them, and a second
//            completion, the notification, says when it has let go of them.
//            Over loopback the receiving side copies them anyway.
enum class Copy { splice, read, send_zc };

// The --copy flag's value; main() lists the three names as its choices.
inline Copy copy_named(const std::string& name) {
    if (name == "read") return Copy::read;
    if (name == "send_zc") return Copy::send_zc;
    return Copy::splice;
}

class Staging {
public:
    explicit Staging(Copy how) : how_(how) {}

    std::size_t staged() const { return staged_; }  // bytes filled, not yet drained

    // Makes the pipe or the chunk, once. False if the pipe cannot be made (EMFILE).
    bool ready() {
        if (how_ != Copy::splice) {
            if (!chunk_) chunk_ = page_aligned_chunk();
            return true;
        }
        if (pipe_in_) return true;
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) < 0) return false;
        pipe_out_.reset(ends[0]);
        pipe_in_.reset(ends[1]);
        ::fcntl(pipe_in_.get(), F_SETPIPE_SZ, 256 * 1024);  // bigger pieces; best effort
        pipe_size_ = static_cast<std::size_t>(::fcntl(pipe_in_.get(), F_GETPIPE_SZ));
        return true;
    }

    // Prepares the fill of the next piece of r's body; returns the piece's length.
    unsigned prep_fill(io_uring_sqe* s, const iolab::Response& r) {
        std::size_t room = how_ == Copy::splice ? pipe_size_ : iolab::Outbox::copy_chunk;
        auto piece = static_cast<unsigned>(std::min<std::uint64_t>(r.file_length, room));
        staged_at_ = 0;
        if (how_ == Copy::splice)
            io_uring_prep_splice(s, r.file.get(), r.file_offset, pipe_in_.get(), -1, piece, 0);
        else
            io_uring_prep_read(s, r.file.get(), chunk_.get(), piece,
                               static_cast<std::uint64_t>(r.file_offset));
        return piece;
    }
    void prep_drain(io_uring_sqe* s, int socket, unsigned length) {
        char* from = chunk_.get() + staged_at_;
        if (how_ == Copy::splice)
            io_uring_prep_splice(s, pipe_out_.get(), -1, socket, -1, length, 0);
        else if (how_ == Copy::send_zc)
            io_uring_prep_send_zc(s, socket, from, length, MSG_NOSIGNAL,
                                  IORING_SEND_ZC_REPORT_USAGE);
        else
            io_uring_prep_send(s, socket, from, length, MSG_NOSIGNAL);
    }

    void filled(iolab::Response& r, std::size_t n) {  // n bytes of r's file are staged
        r.file_offset += static_cast<off_t>(n);
        r.file_length -= n;
        staged_ = n;
    }
    void drained(std::size_t n) {
        staged_ -= n;
        staged_at_ += n;
    }

private:
    // send_zc lends the socket the chunk's pages. From a chunk that starts
    // mid-page (glibc: 3,760 bytes in, say), segments straddle two pages,
    // and a client with a tiny receive buffer (SO_RCVBUF 4096) was seen to
    // drop one (ss -m: d1) and then keep its window under one segment, so
    // each further one waited for the retransmission timer: 10 KB/s instead
    // of 65 MB/s. From a page-aligned chunk it does not (README: send_zc).
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };
    using Chunk = std::unique_ptr<char, Free>;
    static Chunk page_aligned_chunk() {
        static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        Chunk chunk(static_cast<char*>(std::aligned_alloc(page, iolab::Outbox::copy_chunk)));
        if (!chunk) throw std::bad_alloc();
        return chunk;
    }

    Copy how_;
    iolab::Fd pipe_out_, pipe_in_;  // splice: read end, write end
    std::size_t pipe_size_ = 0;
    Chunk chunk_;  // read, send_zc
    std::size_t staged_ = 0, staged_at_ = 0;
};

// One client. Its fields change only when a result of the kernel's arrives;
// main.cpp decides what to submit next from them.
struct Client {
    Client(std::uint64_t i, iolab::Fd s, const iolab::DocRoot& root, Copy copy)
        : id(i), socket(std::move(s)), session(root), body(copy) {}

    // The high-water mark of an Outbox: above it, answer and receive no more.
    bool full() const {
        return replies.size() >= iolab::Outbox::max_queued_responses ||
               head_bytes >= iolab::Outbox::high_water_bytes;
    }
    // Drops the replies sent in full, then answers the requests received
    // while there is room: a client that does not read is throttled here.
    void answer() {
        while (sending == 0 && !replies.empty()) {
            iolab::Response& r = replies.front();
            if (head_sent < r.head.size() || r.file_length > 0 || body.staged() > 0) break;
            iolab::stats().requests.fetch_add(1, std::memory_order_relaxed);
            head_bytes -= r.head.size();
            head_sent = 0;
            replies.pop_front();
        }
        while (!full()) {
            std::optional<iolab::Response> r = session.next_response();
            if (!r) break;
            head_bytes += r->head.size();
            replies.push_back(std::move(*r));
        }
    }
    // A send-side result: false if the client is gone (or the file shrank).
    bool sent(Op op, int result) {
        if (result == -ECANCELED) return true;  // an earlier link of its chain fell short
        if (result <= 0) return false;          // EPIPE, ECONNRESET; a fill of 0: truncated file
        auto n = static_cast<std::size_t>(result);
        if (op == Op::head) head_sent += n;
        if (op == Op::fill) body.filled(replies.front(), n);
        if (op == Op::drain) body.drained(n);
        if (op != Op::fill) iolab::stats().bytes_sent.fetch_add(n, std::memory_order_relaxed);
        return true;
    }

    std::uint64_t id;
    iolab::Fd socket;
    iolab::Session session;
    iolab::ConnectionClock clock;
    std::deque<iolab::Response> replies;  // not yet sent in full; the front one is being sent
    std::size_t head_sent = 0;            // bytes of replies.front().head sent
    std::size_t head_bytes = 0;           // bytes of the heads in `replies`
    Staging body;                         // the front reply's body, between file and socket
    std::unique_ptr<char[]> inbox;        // rung 1: the buffer its receive names
    int in_flight = 0;  // operations the kernel holds: the buffers and fds they name must live
    int sending = 0;    // operations of the current send chain not yet completed
    int notifying = 0;  // send_zc operations waiting only for their notification
    bool receiving = false, input_done = false, closing = false;
    bool pausing = false;  // a multishot receive is being cancelled: the replies are full
};

}  // namespace proactor
