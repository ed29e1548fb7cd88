#include "docroot.hpp"

#include <fcntl.h>
#include <linux/openat2.h>  // struct open_how, RESOLVE_*
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <system_error>

namespace iolab {

namespace {

// glibc 2.36 has no openat2() wrapper, so call the system call directly.
int openat2(int dir, const char* path, int flags, std::uint64_t resolve) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dir, path, &how, sizeof how));
}

int status_for_errno(int error) {
    switch (error) {
        case ENOENT:
        case ENOTDIR:
            return 404;
        case ENAMETOOLONG:
            return 400;
        case EMFILE:
        case ENFILE:
        case ENOMEM:
            return 503;
        default:  // EXDEV (escapes the root), ELOOP, EACCES, EPERM...
            return 403;
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

DocRoot::DocRoot(const std::string& directory)
    : dir_(::open(directory.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)) {
    if (!dir_) throw std::system_error(errno, std::system_category(), "document root " + directory);
}

OpenedFile DocRoot::open(std::string_view path) const {
    if (path.find('\0') != std::string_view::npos) return {Fd(), 0, 400};
    while (path.starts_with('/'))
        path.remove_prefix(1);
    std::string relative = path.empty() ? "index.html" : std::string(path);

    // RESOLVE_BENEATH: the kernel fails with EXDEV if any step of the walk,
    // `..` or a symlink, would leave the root; absolute symlinks are refused.
    // RESOLVE_NO_MAGICLINKS: no /proc/self/fd-style jumps.
    // O_NONBLOCK: opening a FIFO must not wait for a writer (open(2)); it is
    // refused below anyway, and on regular files O_NONBLOCK changes nothing.
    Fd file(openat2(dir_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                    RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
    if (!file) return {Fd(), 0, status_for_errno(errno)};

    struct stat info {};
    if (::fstat(file.get(), &info) < 0) return {Fd(), 0, 403};
    if (!S_ISREG(info.st_mode)) return {Fd(), 0, 403};  // directories, FIFOs, devices, sockets
    return {std::move(file), static_cast<std::uint64_t>(info.st_size), 200};
}

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            int high = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
            int low = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
            if (high < 0 || low < 0) return false;
            c = static_cast<char>(high * 16 + low);
            i += 2;
        }
        if (c == '\0') return false;
        out.push_back(c);
    }
    return true;
}

std::string_view content_type(std::string_view path) {
    struct Entry {
        std::string_view extension, type;
    };
    static constexpr Entry types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/markdown; charset=utf-8"},
        {".css", "text/css"},
        {".js", "text/javascript"},
        {".json", "application/json"},
        {".xml", "application/xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".pdf", "application/pdf"},
        {".wasm", "application/wasm"},
    };
    std::size_t dot = path.rfind('.');
    std::size_t slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
        return "application/octet-stream";
    std::string extension(path.substr(dot));
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const Entry& entry : types)
        if (entry.extension == extension) return entry.type;
    return "application/octet-stream";
}

}  // namespace iolab
