// The ways stage08 moves a file body into a socket (--copy). Each is a
// BodySender (common/outbox.hpp): called when the socket is writable, it
// sends what it can of the response's file region and advances r.file_offset
// and r.file_length by what went out.
//
//   read      the Outbox's own path (stages 01-07): read() into a buffer, then write()
//   mmap      send() from a mapping of the file: one CPU copy, no buffer to fill
//   sendfile  the kernel hands page-cache pages to the socket itself
//   splice    file -> pipe -> socket: the pipe holds page references, not copies
//   direct    O_DIRECT pread() past the page cache into an aligned buffer, then send()
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "log.hpp"
#include "outbox.hpp"

namespace copy_paths {

// What one sendfile()/send()/splice() result means for the body.
inline iolab::IoResult progress(iolab::Response& r, ssize_t sent) {
    // iolab:lab BEGIN progress
    // iolab:lab TODO what one call's result means: bytes sent move the body's offset and
    // iolab:lab TODO shrink what is left (ok); 0 means the file was cut short (closed);
    // iolab:lab TODO EAGAIN: wait for room (would_block); EINTR: call again; else closed
    // iolab:lab STUB static_cast<void>(r), static_cast<void>(sent);
    // iolab:lab STUB return {0, iolab::Io::closed};
    if (sent > 0) {
        r.file_offset += sent;
        r.file_length -= static_cast<std::uint64_t>(sent);
        return {static_cast<std::size_t>(sent), iolab::Io::ok};
    }
    // 0 bytes from a file we were told is longer: it was truncated while we
    // sent it. Close the connection; retrying would spin forever.
    if (sent == 0) return {0, iolab::Io::closed};
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, iolab::Io::would_block};
    if (errno == EINTR) return {0, iolab::Io::ok};  // nothing sent: the Outbox calls again
    return {0, iolab::Io::closed};                  // EPIPE, ECONNRESET, EFAULT (see mmap)
    // iolab:lab END progress
}

class Sendfile : public iolab::BodySender {
public:
    iolab::IoResult send_body(int socket, iolab::Response& r, std::size_t max_bytes) override {
        // iolab:lab BEGIN sendfile
        // iolab:lab TODO the sendfile call: send what is left of the body from r.file_offset,
        // iolab:lab TODO at most max_bytes and 0x7ffff000 a call; progress() accounts for it
        // iolab:lab STUB static_cast<void>(socket), static_cast<void>(r);
        // iolab:lab STUB static_cast<void>(max_bytes);
        // iolab:lab STUB return {0, iolab::Io::closed};
        // One call moves at most 0x7ffff000 bytes (sendfile(2), NOTES): ask
        // for no more, or a 64-bit length would be cut or refused.
        auto want = static_cast<std::size_t>(
            std::min<std::uint64_t>({r.file_length, 0x7ffff000, max_bytes}));
        off_t offset = r.file_offset;  // sendfile() advances this copy; we count `sent` ourselves
        return progress(r, ::sendfile(socket, r.file.get(), &offset, want));
        // iolab:lab END sendfile
    }
};

// One read-only mapping of a whole file, unmapped exactly once. Move-only,
// like Fd: a copy would unmap the same pages twice.
class Mapping {
public:
    Mapping() = default;
    Mapping(int fd, std::size_t length) {
        void* m = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) return;
        data_ = static_cast<char*>(m);
        length_ = length;
    }
    Mapping(Mapping&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), length_(std::exchange(other.length_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            reset();
            data_ = std::exchange(other.data_, nullptr);
            length_ = std::exchange(other.length_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    const char* data() const { return data_; }
    explicit operator bool() const { return data_ != nullptr; }
    void reset() {
        if (data_) ::munmap(data_, length_);
        data_ = nullptr;
        length_ = 0;
    }

private:
    char* data_ = nullptr;
    std::size_t length_ = 0;
};

// We never read the mapping ourselves: only the kernel does, inside send().
// So if the file is truncated under us, touching a page past its new end
// makes send() fail with EFAULT, instead of killing the server with SIGBUS
// as the same touch from user code would (mmap(2), "SIGBUS").
class Mmap : public iolab::BodySender {
public:
    iolab::IoResult send_body(int socket, iolab::Response& r, std::size_t max_bytes) override {
        if (!mapping_) {
            mapping_ =
                Mapping(r.file.get(), static_cast<std::size_t>(r.file_offset) + r.file_length);
            if (!mapping_) return {0, iolab::Io::closed};
        }
        auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>({r.file_length, 4 << 20, max_bytes}));
        return progress(r, ::send(socket, mapping_.data() + r.file_offset, want, MSG_NOSIGNAL));
    }
    void reset() override { mapping_.reset(); }

private:
    Mapping mapping_;  // the whole file, mapped once per response
};

class Splice : public iolab::BodySender {
public:
    iolab::IoResult send_body(int socket, iolab::Response& r, std::size_t max_bytes) override {
        if (!pipe_out_) {
            int ends[2];
            if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0) return {0, iolab::Io::closed};
            pipe_out_.reset(ends[0]);
            pipe_in_.reset(ends[1]);
            ::fcntl(pipe_in_.get(), F_SETPIPE_SZ, 256 * 1024);  // bigger steps; best effort
        }
        // Refill the pipe from the file when it is empty. The bytes in the
        // pipe still count as unsent: r.file_offset moves only when they
        // reach the socket, so an EAGAIN here loses nothing.
        if (in_pipe_ == 0) {
            off_t offset = r.file_offset;
            ssize_t n =
                ::splice(r.file.get(), &offset, pipe_in_.get(), nullptr,
                         static_cast<std::size_t>(std::min<std::uint64_t>(r.file_length, 1 << 30)),
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n <= 0) return progress(r, n);  // 0: truncated
            in_pipe_ = static_cast<std::size_t>(n);
        }
        ssize_t sent = ::splice(pipe_out_.get(), nullptr, socket, nullptr,
                                std::min(in_pipe_, max_bytes), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (sent > 0) in_pipe_ -= static_cast<std::size_t>(sent);
        return progress(r, sent);
    }

private:
    iolab::Fd pipe_out_, pipe_in_;  // read end, write end
    std::size_t in_pipe_ = 0;       // body bytes sitting in the pipe
};

// O_DIRECT wants the buffer's address, the file offset and the length of
// each read aligned to the storage's logical block size (open(2), NOTES);
// 4096 covers 512-byte and 4 KiB blocks.
constexpr std::size_t direct_align = 4096;

// A heap buffer at an aligned address, freed once. Move-only: one owner.
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t size)
        : data_(static_cast<char*>(std::aligned_alloc(direct_align, size))) {
        if (!data_) throw std::bad_alloc();
    }
    char* get() const { return data_.get(); }
    explicit operator bool() const { return data_ != nullptr; }

private:
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };
    std::unique_ptr<char, Free> data_;
};

// The file was opened like every other (DocRoot::open(), openat2 with
// RESOLVE_BENEATH); O_DIRECT is switched on for this one open file with
// fcntl(F_SETFL), which Linux allows. A filesystem without direct I/O says
// EINVAL, there or at the first read: that response is then read through
// the page cache after all, and the server says so once.
class Direct : public iolab::BodySender {
public:
    static constexpr std::size_t chunk = 512 * 1024;  // one disk request per read

    iolab::IoResult send_body(int socket, iolab::Response& r, std::size_t max_bytes) override {
        if (begin_ == end_) {  // the buffer is drained: refill it from the file
            if (!buffer_) {
                buffer_ = AlignedBuffer(chunk);
                if (!set_direct(r.file.get(), true)) buffered();
            }
            if (ssize_t n = fill(r); n <= 0) return progress(r, n);  // 0: truncated
        }
        ssize_t sent = ::send(socket, buffer_.get() + begin_, std::min(end_ - begin_, max_bytes),
                              MSG_NOSIGNAL);
        if (sent > 0) begin_ += static_cast<std::size_t>(sent);
        return progress(r, sent);
    }
    void reset() override {
        buffer_ = AlignedBuffer();
        begin_ = end_ = 0;
    }

private:
    // Reads whole blocks from the one that holds file_offset (the bytes
    // before the offset are skipped, not sent). With O_DIRECT this waits
    // for the disk every time: no readahead has fetched the next blocks.
    // A read may come back short (pread(2) allows it; with O_DIRECT it
    // happens at the end of the file): read on until the buffer is full or
    // holds the rest of the body, so that each fill sends a whole chunk.
    ssize_t fill(const iolab::Response& r) {
        std::uint64_t start = r.file_offset & ~std::uint64_t{direct_align - 1};
        auto skip = static_cast<std::size_t>(r.file_offset - start);
        std::size_t got = 0;
        while (got < chunk && got < skip + r.file_length) {
            ssize_t n = read_at(buffer_.get() + got, chunk - got, start + got, r.file.get());
            if (n < 0) return n;
            if (n == 0) break;  // the end of the file
            got += static_cast<std::size_t>(n);
        }
        if (got <= skip) return 0;  // the file ends before file_offset: truncated
        begin_ = skip;
        end_ = std::min<std::size_t>(got, skip + r.file_length);
        return static_cast<ssize_t>(got);
    }
    // One pread(); where the filesystem refuses O_DIRECT (EINVAL), the same
    // read through the page cache.
    static ssize_t read_at(char* into, std::size_t count, std::uint64_t offset, int file) {
        ssize_t n = ::pread(file, into, count, static_cast<off_t>(offset));
        if (n < 0 && errno == EINVAL && set_direct(file, false)) {
            buffered();
            n = ::pread(file, into, count, static_cast<off_t>(offset));
        }
        return n;
    }
    static bool set_direct(int file, bool on) {
        int flags = ::fcntl(file, F_GETFL);
        return flags >= 0 && ::fcntl(file, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
    }
    static void buffered() {
        static bool said = false;
        if (!std::exchange(said, true))
            iolab::log_warn("--copy direct: this filesystem refuses O_DIRECT (EINVAL);",
                            " reading through the page cache instead");
    }

    AlignedBuffer buffer_;             // only while a body is sent, like the Outbox's chunk
    std::size_t begin_ = 0, end_ = 0;  // the bytes read but not yet sent
};

// At most `bytes` of the replies may wait unsent in the socket (--unsent-limit;
// 0: no limit, the kernel's default). sendfile() and splice() hand the kernel
// a whole file in a few calls, and TCP queues what it cannot send yet. Those
// bytes then leave whenever an ACK or the pacing timer lets them, on the CPU
// that handles it: on loopback, often the client's. With TCP_NOTSENT_LOWAT
// the socket is writable only while less than `bytes` is unsent, so most
// segments leave from our own calls, on our own CPU (README: "Who sends the
// bytes"). 128 KiB: the value the option's kernel commit calls enough for
// most workloads.
inline constexpr int default_unsent_limit = 128 * 1024;

inline void limit_unsent(int socket, int bytes) {
    if (bytes > 0) ::setsockopt(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes);
}

// The sender for --copy NAME; none for "read" (the Outbox's own read + write).
inline std::unique_ptr<iolab::BodySender> make_sender(const std::string& name) {
    if (name == "sendfile") return std::make_unique<Sendfile>();
    if (name == "mmap") return std::make_unique<Mmap>();
    if (name == "splice") return std::make_unique<Splice>();
    if (name == "direct") return std::make_unique<Direct>();
    return nullptr;
}

}  // namespace copy_paths
