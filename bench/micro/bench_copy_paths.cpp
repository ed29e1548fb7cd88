// Claim of the notes: "read()+write() copies every byte twice through user
// space; sendfile() and splice() move file pages to the socket inside the
// kernel" - the lesson of stage08. Each benchmark sends a 16 MiB file (in the
// page cache) to a connected socket, 128 KiB per system call, by one of four paths:
//   read_write:  pread() into a user buffer, write() it out (copy in, copy out)
//   mmap_write:  mmap() the file, write() from the mapping (copy out only, plus
//                the page faults of the fresh mapping, paid on every request)
//   sendfile:    sendfile(), file to socket inside the kernel
//   splice:      splice() file -> pipe -> socket, the general form of sendfile
// A thread on the other end reads and discards everything, as a client would.
// Setups: TCP loopback with the sender on CPU 0 and the receiver on CPU 1 (how
// the course runs server and load generator) or both on CPU 0, and an AF_UNIX
// socketpair (CPUs 0 and 1) for comparison.
//
// Three numbers per run: bytes_per_second (wall clock); tx_cpu_s_per_GB, the
// CPU seconds the *sending* thread spent per GB sent - the server's cost; and
// rx_cpu_s_per_GB, the same for the receiver, which copies every byte into its
// buffer whatever the sender did. On loopback the kernel runs TCP's receive
// path (softirq) in whichever thread happens to be in the kernel, usually the
// sender, so compare tx + rx as well as tx alone.
//
// What to expect on the course machine (2 vCPU KVM guest, kernel 6.18; medians
// of 5 runs, noisy, so use --benchmark_repetitions):
//                        read_write          sendfile / splice
//   tcp_same_core   tx   ~0.12 s/GB          ~0.07 s/GB   (rx ~0.22 vs ~0.37)
//   unix_cross_core tx   ~0.16 s/GB          ~0.10 s/GB
//   tcp_cross_core  tx   ~0.38 s/GB          ~0.48-0.52 s/GB
// and zero-copy's throughput no better anywhere (TCP ~2-2.6 GB/s for every
// path; AF_UNIX ~5.6 GB/s read_write, ~3 GB/s sendfile). So the sender's own
// copy is saved - zero-copy shows in CPU, not throughput - but on loopback the
// saving is small next to the rest: the receiver still copies every byte, and
// with the receiver on another CPU the sender spends most of its time running
// TCP's receive path and waking the other vCPU (perf: softirq and
// spin_unlock_irqrestore, not copies), which here costs more with sendfile, not
// less. (The runner's server-level figure, read against sendfile in CPU s/GB,
// is in docs/measuring.md.) mmap_write saves the first copy but
// pays a page fault per 4 KiB page of each fresh mapping.
//
// Run: bench_copy_paths [--benchmark_min_time=0.05]

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fd.hpp"
#include "micro_support.hpp"

namespace {

using iolab::Fd;
using iolab::micro::check;

constexpr std::size_t kFileSize = std::size_t{16} << 20;  // 16 MiB, one "request"
constexpr std::size_t kChunk = std::size_t{128} << 10;    // bytes per system call, every path
constexpr double kBytesPerGB = 1e9;

enum class CopyPath { kReadWrite, kMmapWrite, kSendfile, kSplice };
enum class Transport { kTcpLoopback, kUnixSocketpair };
// Where the two threads run: sender on CPU 0, receiver on CPU 1 or also on 0.
enum class Placement { kCrossCore, kSameCore };
constexpr int kSenderCpu = 0;

// CPU time consumed so far by the calling thread alone, in seconds. (This
// clock cannot fail for the calling thread; 0 if it somehow does.)
double thread_cpu_seconds() noexcept {
    timespec now{};
    if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0) return 0;
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// The file to serve, created once per process. It is unlinked as soon as it is
// open, so it disappears when the program exits, even if it crashes. Writing
// it leaves it in the page cache: the benchmarks measure copies, not the disk.
int source_file() {
    static const Fd file = [] {
        const char* tmpdir = std::getenv("TMPDIR");
        std::string path = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                           "/iolab-copy-paths-XXXXXX";
        Fd created(check(::mkostemp(path.data(), O_CLOEXEC), "mkostemp"));
        check(::unlink(path.c_str()), "unlink");
        std::vector<char> block(kChunk);
        for (std::size_t i = 0; i < block.size(); ++i) {
            block[i] = static_cast<char>('a' + i % 26);
        }
        for (std::size_t written = 0; written < kFileSize; written += block.size()) {
            if (check(::write(created.get(), block.data(), block.size()), "write") !=
                static_cast<ssize_t>(block.size())) {
                throw std::runtime_error("short write to the temporary file");
            }
        }
        return created;
    }();
    return file.get();
}

// A connected pair: `sender` is the server's socket, `receiver` the client's.
struct Connection {
    Fd sender;
    Fd receiver;
};

Connection connect_tcp_loopback() {
    const Fd listener(check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // any free port
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    check(::bind(listener.get(), generic, sizeof address), "bind");
    check(::listen(listener.get(), 1), "listen");
    socklen_t length = sizeof address;
    check(::getsockname(listener.get(), generic, &length), "getsockname");

    Connection connection;
    connection.receiver = Fd(check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    check(::connect(connection.receiver.get(), generic, sizeof address), "connect");
    connection.sender =
        Fd(check(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC), "accept4"));
    return connection;
}

Connection connect_unix_socketpair() {
    std::array<int, 2> pair{};
    check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()), "socketpair");
    return {Fd(pair[0]), Fd(pair[1])};
}

// The client: reads and discards until end of file, then records how many
// bytes it got and how much CPU its thread used. Owns the receiving socket.
class Drain {
public:
    Drain(Fd socket, int cpu) : socket_(std::move(socket)), reader_([this, cpu] { run(cpu); }) {}
    Drain(const Drain&) = delete;
    Drain& operator=(const Drain&) = delete;
    // If the sender never got to close its end, shutting ours down wakes the reader.
    ~Drain() {
        if (reader_.joinable()) {
            ::shutdown(socket_.get(), SHUT_RDWR);
            reader_.join();
        }
    }

    // Waits for end of file (the sender must have shut down its end).
    void join() { reader_.join(); }
    double cpu_seconds() const { return cpu_seconds_; }
    double bytes_received() const { return bytes_received_; }

private:
    // Raw calls only: an exception escaping a thread would terminate the program.
    void run(int cpu) {
        cpu_set_t only;
        CPU_ZERO(&only);
        CPU_SET(cpu, &only);
        ::sched_setaffinity(0, sizeof only, &only);
        std::vector<char> buffer(256 << 10);
        ssize_t got = 0;
        while ((got = ::read(socket_.get(), buffer.data(), buffer.size())) > 0) {
            bytes_received_ += static_cast<double>(got);
        }
        cpu_seconds_ = thread_cpu_seconds();
    }

    Fd socket_;
    double cpu_seconds_ = 0;
    double bytes_received_ = 0;
    std::thread reader_;  // last member: starts after the others exist
};

// write() all of [data, data + size) to a blocking socket.
void write_all(int socket, const char* data, std::size_t size) {
    while (size > 0) {
        const auto sent = static_cast<std::size_t>(check(::write(socket, data, size), "write"));
        data += sent;
        size -= sent;
    }
}

// --- the four paths: each sends the whole file once ---

void send_read_write(int file, int socket, std::vector<char>& buffer) {
    for (off_t offset = 0; offset < static_cast<off_t>(kFileSize);) {
        // copy 1: page cache -> user buffer
        const auto got = check(::pread(file, buffer.data(), buffer.size(), offset), "pread");
        if (got == 0) throw std::runtime_error("the file is shorter than expected");
        write_all(socket, buffer.data(), static_cast<std::size_t>(got));  // copy 2: user -> socket
        offset += got;
    }
}

void send_mmap_write(int file, int socket) {
    void* mapping = ::mmap(nullptr, kFileSize, PROT_READ, MAP_PRIVATE, file, 0);
    if (mapping == MAP_FAILED) iolab::micro::throw_errno("mmap");
    const auto* bytes = static_cast<const char*>(mapping);
    for (std::size_t offset = 0; offset < kFileSize; offset += kChunk) {
        write_all(socket, bytes + offset, std::min(kChunk, kFileSize - offset));
    }
    check(::munmap(mapping, kFileSize), "munmap");
}

void send_sendfile(int file, int socket) {
    off_t offset = 0;
    while (offset < static_cast<off_t>(kFileSize)) {
        const std::size_t want = std::min(kChunk, kFileSize - static_cast<std::size_t>(offset));
        if (check(::sendfile(socket, file, &offset, want), "sendfile") == 0) {
            throw std::runtime_error("sendfile: the file is shorter than expected");
        }
    }
}

// splice() needs a pipe on one side of every call: file -> pipe moves page
// references, pipe -> socket hands them to the socket. No byte passes through
// user space.
void send_splice(int file, int socket, const Fd& pipe_in, const Fd& pipe_out) {
    loff_t offset = 0;
    while (offset < static_cast<loff_t>(kFileSize)) {
        const std::size_t want = std::min(kChunk, kFileSize - static_cast<std::size_t>(offset));
        auto in_pipe = check(
            ::splice(file, &offset, pipe_in.get(), nullptr, want, SPLICE_F_MOVE | SPLICE_F_MORE),
            "splice(file -> pipe)");
        if (in_pipe == 0) throw std::runtime_error("splice: the file is shorter than expected");
        while (in_pipe > 0) {
            in_pipe -=
                check(::splice(pipe_out.get(), nullptr, socket, nullptr,
                               static_cast<std::size_t>(in_pipe), SPLICE_F_MOVE | SPLICE_F_MORE),
                      "splice(pipe -> socket)");
        }
    }
}

void BM_FileToSocket(benchmark::State& state, CopyPath path, Transport transport,
                     Placement placement) {
    const int receiver_cpu = placement == Placement::kCrossCore ? kSenderCpu + 1 : kSenderCpu;
    if (!iolab::micro::cpu_allowed(kSenderCpu) || !iolab::micro::cpu_allowed(receiver_cpu)) {
        state.SkipWithError("needs CPUs 0 and 1: fewer than 2 cores available");
        return;
    }
    iolab::micro::AffinityGuard restore_affinity;
    iolab::micro::pin_this_thread(kSenderCpu);

    const int file = source_file();
    Connection connection =
        transport == Transport::kTcpLoopback ? connect_tcp_loopback() : connect_unix_socketpair();
    Drain client(std::move(connection.receiver), receiver_cpu);
    const int socket = connection.sender.get();

    // Per-path resources, made once per connection as a server would.
    std::vector<char> buffer(path == CopyPath::kReadWrite ? kChunk : 0);
    Fd pipe_in, pipe_out;
    if (path == CopyPath::kSplice) {
        std::array<int, 2> fds{};
        check(::pipe2(fds.data(), O_CLOEXEC), "pipe2");
        pipe_out = Fd(fds[0]);
        pipe_in = Fd(fds[1]);
        // Room for one whole chunk (the default pipe holds 64 KiB).
        check(::fcntl(pipe_in.get(), F_SETPIPE_SZ, static_cast<int>(kChunk)), "F_SETPIPE_SZ");
    }

    const double cpu_before = thread_cpu_seconds();
    for (auto _ : state) {
        switch (path) {
            case CopyPath::kReadWrite:
                send_read_write(file, socket, buffer);
                break;
            case CopyPath::kMmapWrite:
                send_mmap_write(file, socket);
                break;
            case CopyPath::kSendfile:
                send_sendfile(file, socket);
                break;
            case CopyPath::kSplice:
                send_splice(file, socket, pipe_in, pipe_out);
                break;
        }
    }
    const double sender_cpu = thread_cpu_seconds() - cpu_before;

    // End of file for the client; wait until it has read everything.
    check(::shutdown(socket, SHUT_WR), "shutdown");
    client.join();

    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(kFileSize);
    if (client.bytes_received() != bytes) {
        throw std::runtime_error("the receiver did not get every byte sent");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["tx_cpu_s_per_GB"] = sender_cpu / (bytes / kBytesPerGB);
    state.counters["rx_cpu_s_per_GB"] = client.cpu_seconds() / (bytes / kBytesPerGB);
}

// Registers every path for every setup, grouped by setup so the four paths
// being compared print next to each other, e.g. BM_FileToSocket/tcp_cross_core/sendfile.
void register_benchmarks() {
    struct Setup {
        const char* name;
        Transport transport;
        Placement placement;
    };
    struct Path {
        const char* name;
        CopyPath path;
    };
    const Setup setups[] = {{"tcp_cross_core", Transport::kTcpLoopback, Placement::kCrossCore},
                            {"tcp_same_core", Transport::kTcpLoopback, Placement::kSameCore},
                            {"unix_cross_core", Transport::kUnixSocketpair, Placement::kCrossCore}};
    const Path paths[] = {{"read_write", CopyPath::kReadWrite},
                          {"mmap_write", CopyPath::kMmapWrite},
                          {"sendfile", CopyPath::kSendfile},
                          {"splice", CopyPath::kSplice}};
    for (const Setup& setup : setups) {
        for (const Path& path : paths) {
            const std::string name = std::string("BM_FileToSocket/") + setup.name + "/" + path.name;
            // UseRealTime: the rate is bytes per wall-clock second, and the
            // iteration count is chosen on wall time (the sender may block).
            benchmark::RegisterBenchmark(name.c_str(), BM_FileToSocket, path.path, setup.transport,
                                         setup.placement)
                ->UseRealTime();
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    // A vanished reader must show as an EPIPE error, not kill the benchmark.
    ::signal(SIGPIPE, SIG_IGN);
    register_benchmarks();
    return iolab::micro::run_benchmarks(argc, argv);
}
