// short_io: an LD_PRELOAD library that makes every socket transfer short.
//
// The kernel may move fewer bytes than asked in any read(), write(),
// send(), recv(), sendfile() or splice(): a socket buffer with less room
// than the reply, a signal, a segment boundary. On loopback with small
// requests that almost never happens, so code that forgets to loop over a
// short write (or treats a short read as a whole request) passes every test
// and fails in production. Preloaded into a server, this library clamps
// each such call to at most IOLAB_SHORT_IO_MAX bytes (default 7), so every
// request arrives in pieces and every reply leaves in pieces.
//
//   LD_PRELOAD=/path/libiolab_short_io.so server --port 0
//
// Each wrapper finds the real function with dlsym(RTLD_NEXT) and calls it
// with a smaller count; nothing else changes. read(), write(), readv() and
// writev() are clamped only on sockets: an eventfd or a timerfd (which asio
// uses) must be read and written 8 bytes at a time, and the kernel never
// splits those. pread() is clamped on any file: a short read of a file is
// legal too, and the copy path must handle it. With a sanitizer, its runtime
// must come first in LD_PRELOAD (tests/faults/CMakeLists.txt sees to that).
#undef _FORTIFY_SOURCE  // we define read() and friends: no inline fortified versions
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_IOVECS 64

// The clamp, read once from IOLAB_SHORT_IO_MAX.
static size_t clamp_bytes(void) {
    static size_t bytes;  // 0: not read yet (racing threads compute the same value)
    size_t cached = __atomic_load_n(&bytes, __ATOMIC_RELAXED);
    if (cached == 0) {
        const char* text = getenv("IOLAB_SHORT_IO_MAX");
        long value = text ? atol(text) : 0;
        cached = value > 0 ? (size_t)value : 7;
        __atomic_store_n(&bytes, cached, __ATOMIC_RELAXED);
    }
    return cached;
}

static size_t clamp(size_t count) {
    size_t max = clamp_bytes();
    return count < max ? count : max;
}

static int is_socket(int fd) {
    struct stat info;
    return fstat(fd, &info) == 0 && S_ISSOCK(info.st_mode);
}

// A copy of `iov` holding at most clamp_bytes() bytes in all; returns its length.
static int clamp_iovecs(const struct iovec* iov, int count, struct iovec* out) {
    size_t left = clamp_bytes();
    int n = 0;
    for (int i = 0; i < count && n < MAX_IOVECS && left > 0; ++i) {
        out[n] = iov[i];
        if (out[n].iov_len > left) out[n].iov_len = left;
        left -= out[n].iov_len;
        ++n;
    }
    return n;
}

// The next definition of `name` after this library: libc's, or a
// sanitizer's interceptor when the sanitizer runtime is loaded first.
static void* next_definition(const char* name) {
    void* f = dlsym(RTLD_NEXT, name);
    if (f == NULL) abort();
    return f;
}

// Declares name_real, the real `name`, looked up on first use. (Racing
// threads look up the same address; memcpy because ISO C has no cast from
// dlsym's void* to a function pointer.)
#define REAL(name)                                                                    \
    static __typeof__(&name) name##_cache;                                            \
    __typeof__(&name) name##_real = __atomic_load_n(&name##_cache, __ATOMIC_ACQUIRE); \
    if (name##_real == NULL) {                                                        \
        void* found = next_definition(#name);                                         \
        memcpy(&name##_real, &found, sizeof found);                                   \
        __atomic_store_n(&name##_cache, name##_real, __ATOMIC_RELEASE);               \
    }

ssize_t read(int fd, void* buf, size_t count) {
    REAL(read)
    return read_real(fd, buf, is_socket(fd) ? clamp(count) : count);
}

ssize_t __read_chk(int fd, void* buf, size_t count, size_t buflen) {
    REAL(__read_chk)
    return __read_chk_real(fd, buf, is_socket(fd) && count <= buflen ? clamp(count) : count,
                           buflen);
}

ssize_t write(int fd, const void* buf, size_t count) {
    REAL(write)
    return write_real(fd, buf, is_socket(fd) ? clamp(count) : count);
}

ssize_t readv(int fd, const struct iovec* iov, int count) {
    REAL(readv)
    if (!is_socket(fd)) return readv_real(fd, iov, count);
    struct iovec shorter[MAX_IOVECS];
    return readv_real(fd, shorter, clamp_iovecs(iov, count, shorter));
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
    REAL(writev)
    if (!is_socket(fd)) return writev_real(fd, iov, count);
    struct iovec shorter[MAX_IOVECS];
    return writev_real(fd, shorter, clamp_iovecs(iov, count, shorter));
}

ssize_t recv(int fd, void* buf, size_t count, int flags) {
    REAL(recv)
    return recv_real(fd, buf, clamp(count), flags);
}

ssize_t __recv_chk(int fd, void* buf, size_t count, size_t buflen, int flags) {
    REAL(__recv_chk)
    return __recv_chk_real(fd, buf, count <= buflen ? clamp(count) : count, buflen, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t count, int flags, __SOCKADDR_ARG from,
                 socklen_t* from_length) {
    REAL(recvfrom)
    return recvfrom_real(fd, buf, clamp(count), flags, from, from_length);
}

ssize_t recvmsg(int fd, struct msghdr* message, int flags) {
    REAL(recvmsg)
    struct iovec shorter[MAX_IOVECS];
    struct msghdr copy = *message;
    copy.msg_iov = shorter;
    copy.msg_iovlen = (size_t)clamp_iovecs(message->msg_iov, (int)message->msg_iovlen, shorter);
    ssize_t n = recvmsg_real(fd, &copy, flags);
    message->msg_namelen = copy.msg_namelen;  // what the kernel wrote back
    message->msg_controllen = copy.msg_controllen;
    message->msg_flags = copy.msg_flags;
    return n;
}

ssize_t send(int fd, const void* buf, size_t count, int flags) {
    REAL(send)
    return send_real(fd, buf, clamp(count), flags);
}

ssize_t sendto(int fd, const void* buf, size_t count, int flags, __CONST_SOCKADDR_ARG to,
               socklen_t to_length) {
    REAL(sendto)
    return sendto_real(fd, buf, clamp(count), flags, to, to_length);
}

ssize_t sendmsg(int fd, const struct msghdr* message, int flags) {
    REAL(sendmsg)
    struct iovec shorter[MAX_IOVECS];
    struct msghdr copy = *message;
    copy.msg_iov = shorter;
    copy.msg_iovlen = (size_t)clamp_iovecs(message->msg_iov, (int)message->msg_iovlen, shorter);
    return sendmsg_real(fd, &copy, flags);
}

ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
    REAL(sendfile)
    return sendfile_real(out, in, offset, clamp(count));
}

ssize_t sendfile64(int out, int in, off64_t* offset, size_t count) {
    REAL(sendfile64)
    return sendfile64_real(out, in, offset, clamp(count));
}

ssize_t splice(int in, loff_t* in_offset, int out, loff_t* out_offset, size_t count,
               unsigned int flags) {
    REAL(splice)
    return splice_real(in, in_offset, out, out_offset, clamp(count), flags);
}

ssize_t pread(int fd, void* buf, size_t count, off_t offset) {
    REAL(pread)
    return pread_real(fd, buf, clamp(count), offset);
}

ssize_t pread64(int fd, void* buf, size_t count, off64_t offset) {
    REAL(pread64)
    return pread64_real(fd, buf, clamp(count), offset);
}

ssize_t __pread_chk(int fd, void* buf, size_t count, off_t offset, size_t buflen) {
    REAL(__pread_chk)
    return __pread_chk_real(fd, buf, count <= buflen ? clamp(count) : count, offset, buflen);
}

ssize_t __pread64_chk(int fd, void* buf, size_t count, off64_t offset, size_t buflen) {
    REAL(__pread64_chk)
    return __pread64_chk_real(fd, buf, count <= buflen ? clamp(count) : count, offset, buflen);
}
