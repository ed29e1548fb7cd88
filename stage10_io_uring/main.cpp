// stage10_io_uring: one thread, many clients, and the kernel does the I/O.
//
// The model: a Proactor. The loop submits whole operations (receive, send,
// splice) to io_uring and reaps their results; it never asks whether a socket
// is ready. The cost: whatever an operation names (a buffer, a descriptor, a
// client) must live until the kernel has posted its last result. (--rung: proactor::Rung.)
//
//   run()                one io_uring_enter() submits and waits; dispatch() reads each result
//   on_accept(), serve() a new client; replies for its requests, then what to submit next
//   send_next()          one chain of linked operations: the head, then a piece of the body
//   close(), released()  cancel what the kernel holds; free a client once it holds nothing

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sysexits.h>

#include <chrono>
#include <map>
#include <optional>

#include "cli.hpp"
#include "log.hpp"
#include "net.hpp"
#include "proactor.hpp"
#include "server.hpp"
#include "timeouts.hpp"

namespace {

using proactor::Client;
using proactor::Copy;
using proactor::Op;
using proactor::Rung;

class Server {
public:
    Server(int listener, const iolab::DocRoot& root, const iolab::Timeouts& timeouts, Copy copy,
           Rung rung, unsigned buffers)
        : ring_(rung, buffers), listener_(listener), root_(root), sweep_(timeouts), copy_(copy) {}
    void run();  // serves until SIGINT or SIGTERM

private:
    void arm_accept() {
        io_uring_prep_multishot_accept(ring_.sqe(proactor::tag(0, Op::accept)), listener_, nullptr,
                                       nullptr, SOCK_CLOEXEC);
    }
    io_uring_sqe* start(Client& c, Op op, unsigned chain = 1) {
        ++c.in_flight;
        ++c.sending;
        return ring_.sqe(proactor::tag(c.id, op), chain);
    }
    void reap();
    void on_accept(int result, bool more);
    void adopt(iolab::Fd socket);
    void dispatch(std::uint64_t data, int result, unsigned flags);
    void serve(Client& c);
    void send_next(Client& c);
    void close(Client& c);
    bool released(Client& c);
    void sweep();

    proactor::Ring ring_;  // first: if io_uring is unavailable, nothing else is made
    int listener_;
    const iolab::DocRoot& root_;
    iolab::TimeoutSweep sweep_;  // finds the clients who kept us waiting too long
    Copy copy_;                  // --copy: how file bodies are sent
    std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
    std::uint64_t next_id_ = 1;
    std::uint64_t zc_sends_ = 0, zc_copied_ = 0;  // send_zc notifications, and "copied after all"
    std::uint64_t dry_ = 0;                       // receives that found the pool empty
};

void Server::run() {
    arm_accept();
    while (!iolab::stop_requested()) {
        // Everything prepared since the last round goes to the kernel in this
        // one io_uring_enter(), which then sleeps until a result is posted, the
        // next sweep is due, or a signal comes (the loop condition sees the stop).
        ring_.submit_and_wait(sweep_.next());
        reap();
        sweep();
    }
    // Stopping: cancel everything, and give the kernel a moment to hand back
    // what it holds before the buffers are freed.
    for (auto& [id, client] : clients_)
        if (!client->closing) close(*client);
    for (int round = 0; round < 20; ++round) {
        std::erase_if(clients_, [this](const auto& entry) { return released(*entry.second); });
        if (clients_.empty()) break;
        ring_.submit_and_wait(iolab::Clock::now() + std::chrono::milliseconds(100));
        reap();
    }
    if (dry_ > 0) iolab::log_info("the receive pool ran dry ", dry_, " times (-ENOBUFS)");
    if (zc_sends_ > 0)
        iolab::log_info("send_zc: the kernel copied ", zc_copied_, " of ", zc_sends_,
                        " zero-copy sends after all");
}

// The results posted before this call, in order; then the slots are the
// kernel's again. (Not those posted meanwhile: a multishot receive would go
// on feeding one client's bytes into this round for as long as it sends.)
void Server::reap() {
    // iolab:lab BEGIN reap
    // iolab:lab TODO completion handling: hand every posted result (io_uring_for_each_cqe) to
    // iolab:lab TODO dispatch(), then give the slots back to the kernel (io_uring_cq_advance)
    // iolab:lab STUB throw std::runtime_error("TODO(lab 10): Server::reap()");
    unsigned head, seen = 0, ready = io_uring_cq_ready(ring_.get());
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
        if (seen == ready) break;
        ++seen;
        dispatch(cqe->user_data, cqe->res, cqe->flags);
    }
    io_uring_cq_advance(ring_.get(), seen);
    // iolab:lab END reap
    ring_.give_back();  // the receive buffers this round used
}

// One multishot accept, armed once, posts a result per new connection
// (IORING_CQE_F_MORE: still armed). Out of descriptors it ends with -EMFILE,
// and re-arming it then would fail at once, before looking for a newcomer:
// a spin. So common's spare descriptor refuses the newcomers waiting, and a
// one-shot poll of the listener says when the next one arrives.
void Server::on_accept(int result, bool more) {
    if (result >= 0) {
        iolab::stats().connections.fetch_add(1, std::memory_order_relaxed);
        adopt(iolab::Fd(result));
    } else if (result == -EMFILE || result == -ENFILE) {
        for (;;) {  // the listener is nonblocking: this ends with EAGAIN
            iolab::Accepted a = iolab::accept_connection(listener_);
            if (a.socket)
                adopt(std::move(a.socket));  // a descriptor was free after all
            else if (a.error != EMFILE && a.error != ENFILE)
                break;
        }
    }
    if (more || iolab::stop_requested()) return;
    if (result >= 0 || result == -ECONNABORTED || result == -EINTR) return arm_accept();
    io_uring_prep_poll_add(ring_.sqe(proactor::tag(0, Op::listener_ready)), listener_, POLLIN);
}

void Server::adopt(iolab::Fd socket) {
    if (iolab::stop_requested()) return;  // stopping: no new clients (this closes it)
    if (!ring_.enter(socket.get())) return iolab::log_error("no file table slot: client refused");
    // Left blocking: the kernel then waits for room or bytes itself. (With
    // O_NONBLOCK a send or splice that finds the socket full is handed back
    // as -EAGAIN.) TCP_NODELAY came from the listener.
    auto client = std::make_unique<Client>(next_id_++, std::move(socket), root_, copy_);
    serve(*client);  // submits its first receive
    clients_.emplace(client->id, std::move(client));
}

void Server::dispatch(std::uint64_t data, int result, unsigned flags) {
    Op op = proactor::op_of(data);
    if (op == Op::accept) return on_accept(result, flags & IORING_CQE_F_MORE);
    if (op == Op::listener_ready) return iolab::stop_requested() ? void() : arm_accept();
    auto found = clients_.find(proactor::id_of(data));
    if (found == clients_.end()) return;
    Client& c = *found->second;
    bool more = flags & IORING_CQE_F_MORE, notification = flags & IORING_CQE_F_NOTIF;
    c.in_flight -= !more;  // a multishot recv posts with F_MORE; send_zc too, then a notification
    if (op != Op::recv && op != Op::cancel) {
        c.sending -= !more;
        c.notifying += more ? 1 : notification ? -1 : 0;
    }
    if (notification) {
        ++zc_sends_;
        zc_copied_ += (static_cast<unsigned>(result) & IORING_NOTIF_USAGE_ZC_COPIED) != 0;
    }
    std::uint64_t answered = c.session.answered();
    bool received = false, sent = false;
    if (op == Op::recv) {
        c.receiving = more;  // without F_MORE a multishot recv has ended: serve() arms another
        c.pausing = c.pausing && more;
        bool pooled = flags & IORING_CQE_F_BUFFER;
        unsigned buffer = flags >> IORING_CQE_BUFFER_SHIFT;
        received = result > 0 && !c.closing;
        if (received)
            c.session.feed(
                {pooled ? ring_.buffer(buffer) : c.inbox.get(), static_cast<std::size_t>(result)});
        if (pooled) ring_.recycle(buffer);  // copied into the session: back to the pool
        dry_ += result == -ENOBUFS;
        if (result == 0 && !c.closing) {
            c.session.feed_eof();
            c.input_done = true;
        } else if (result < 0 && result != -ENOBUFS && result != -ECANCELED && !c.closing) {
            close(c);  // ECONNRESET...; -ENOBUFS (the pool ran dry): just receive again
        }
    } else if (op != Op::cancel && !notification && !c.closing) {
        sent = result > 0 && op != Op::fill;
        if (!c.sent(op, result)) close(c);
    }
    if (!c.closing) {
        serve(c);
        c.clock.update(iolab::waiting_for(c.session, !c.replies.empty()),
                       {received, c.session.answered() != answered, sent});
    }
    if (c.closing && released(c)) clients_.erase(found);
}

// What Connection::work() does for stage07, without doing any I/O itself.
void Server::serve(Client& c) {
    // iolab:lab BEGIN serve
    // iolab:lab TODO submission: answer what was received, start sending the front reply
    // iolab:lab TODO (one chain at a time), close once all is done, else submit the next
    // iolab:lab TODO receive unless one is in flight, input ended or the outbox is full
    // iolab:lab TODO (a multishot receive stays armed: over the mark, cancel it)
    // iolab:lab STUB static_cast<void>(c);
    // iolab:lab STUB throw std::runtime_error("TODO(lab 10): Server::serve()");
    c.answer();  // 1. drop the replies sent in full; 2. answer while there is room
    if (c.sending == 0 && !c.replies.empty()) send_next(c);  // 3. one chain at a time
    if (c.closing) return;
    if (c.sending == 0 && c.replies.empty() && c.session.finished()) return close(c);
    // 4. Receive again, unless over the high-water mark or at the end of input.
    // A multishot receive stays armed: over the mark it is cancelled at once
    // (one more io_uring_enter), or the kernel would go on posting whatever
    // the client sends while we work through this round's results.
    if (c.receiving && c.full() && !c.pausing && ring_.uses(Rung::multishot)) {
        c.pausing = true;
        ++c.in_flight;
        io_uring_prep_cancel64(ring_.sqe(proactor::tag(c.id, Op::cancel)),
                               proactor::tag(c.id, Op::recv), 0);
        io_uring_submit(ring_.get());
    }
    if (c.receiving || c.input_done || c.full() || c.session.finished()) return;
    if (!c.inbox && !ring_.uses(Rung::provided_buffers))
        c.inbox = std::make_unique_for_overwrite<char[]>(proactor::Ring::buffer_size);
    ++c.in_flight;
    ring_.prep_recv(proactor::tag(c.id, Op::recv), c.socket.get(), c.inbox.get());
    c.receiving = true;
    // iolab:lab END serve
}

// The front reply's head, then a piece of its body, as one chain: a link
// starts once the one before has completed in full, and one that falls short
// cancels the rest (-ECANCELED); the next chain resumes from the counts.
void Server::send_next(Client& c) {
    iolab::Response& r = c.replies.front();
    bool body = r.file_length > 0 || c.body.staged() > 0;
    if (body && !c.body.ready()) return close(c);  // no pipe (EMFILE): this client only
    if (c.head_sent < r.head.size()) {
        // MSG_MORE holds the head back, to leave in one segment with the body.
        io_uring_sqe* s = start(c, Op::head, body ? 3 : 1);
        const char* from = r.head.data() + c.head_sent;
        std::size_t length = r.head.size() - c.head_sent;
        int flags = MSG_NOSIGNAL | (body ? MSG_MORE : 0);
        if (ring_.uses(Rung::send_zc))  // the head must then live until the notification
            io_uring_prep_send_zc(s, c.socket.get(), from, length, flags,
                                  IORING_SEND_ZC_REPORT_USAGE);
        else
            io_uring_prep_send(s, c.socket.get(), from, length, flags);
        ring_.on_socket(s);
        if (body) s->flags |= IOSQE_IO_LINK;
    }
    if (!body) return;
    auto piece = static_cast<unsigned>(c.body.staged());
    if (piece == 0) {
        io_uring_sqe* s = start(c, Op::fill, 2);
        piece = c.body.prep_fill(s, r);
        s->flags |= IOSQE_IO_LINK;
    }
    io_uring_sqe* drain = start(c, Op::drain);
    c.body.prep_drain(drain, c.socket.get(), piece);
    ring_.on_socket(drain);
}

// The client is done, gone or too slow. shutdown() makes whatever waits on
// the socket give up at once (a splice asleep in an io-wq worker too), and
// the cancellation removes what is still queued. Its memory lives until the
// kernel has posted the last result that names it: see released().
void Server::close(Client& c) {
    c.closing = true;
    ::shutdown(c.socket.get(), SHUT_RDWR);
    if (c.in_flight == c.notifying) return;
    ++c.in_flight;
    io_uring_prep_cancel_fd(ring_.sqe(proactor::tag(c.id, Op::cancel)), c.socket.get(),
                            IORING_ASYNC_CANCEL_ALL);
}

// True once the kernel holds nothing of a closing client's. A send_zc
// notification waits until the socket has let go of the bytes, which it does
// only once they are acknowledged, or the socket is closed: close it first.
bool Server::released(Client& c) {
    if (c.in_flight == c.notifying && c.socket) {
        ring_.leave(c.socket.get());
        c.socket.reset();
    }
    return c.in_flight == 0;
}

// Once per interval: close the clients that kept us waiting too long.
void Server::sweep() {
    iolab::Clock::time_point now = iolab::Clock::now();
    if (!sweep_.due(now)) return;
    for (auto it = clients_.begin(); it != clients_.end();) {
        Client& c = *it->second;
        if (!c.closing && sweep_.expire(c.clock, c.socket.get(), now)) close(c);
        it = c.closing && released(c) ? clients_.erase(it) : std::next(it);
    }
}

}  // namespace

int main(int argc, char** argv) {
    iolab::ServerOptions options;
    iolab::CommandLine cli("stage10_io_uring",
                           "One thread handing whole operations to the kernel with io_uring.",
                           9010);
    std::string copy = "splice";
    cli.add_flag("--copy", "how file bodies reach the socket", copy, {"splice", "read", "send_zc"});
    int rung = 5;
    cli.add_flag("--rung",
                 "io_uring features, each rung adding one: 1 recv/send into each client's "
                 "buffer (fast poll), 2 provided-buffer ring, 3 multishot recv, 4 registered "
                 "files, 5 SINGLE_ISSUER|DEFER_TASKRUN, 6 replies by send_zc; a rung the "
                 "kernel lacks exits 69, naming what is missing",
                 rung, 1, 6);
    int buffers = proactor::Ring::default_buffers;
    cli.add_flag("--buffers",
                 "receive buffers in the pool (rung 2 up), a power of two; "
                 "a few make it run dry (-ENOBUFS)",
                 buffers, 1, 32768);
    if (std::optional<int> exit_code = cli.parse(argc, argv, options)) return *exit_code;

    try {
        iolab::DocRoot root(options.root);
        iolab::Fd listener = iolab::listen_tcp(options.host, options.port);
        // Only the out-of-descriptors path calls accept4() itself: it must not block.
        iolab::set_nonblocking(listener.get());
        int one = 1;  // inherited by every accepted socket: no setsockopt() per client
        ::setsockopt(listener.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        iolab::install_signal_handlers();
        iolab::shut_down_on_stop(listener.get());
        // Before announcing: a machine without io_uring fails here.
        Server server(listener.get(), root, options.timeouts, proactor::copy_named(copy),
                      static_cast<Rung>(rung), static_cast<unsigned>(buffers));
        iolab::announce_listening(options, listener.get());
        server.run();
        iolab::print_summary("stage10_io_uring");
        return 0;
    } catch (const proactor::Unavailable& error) {
        iolab::log_error("io_uring unavailable: ", error.what());
        return EX_UNAVAILABLE;
    } catch (const std::exception& error) {
        iolab::log_error(error.what());
        return 1;
    }
}
