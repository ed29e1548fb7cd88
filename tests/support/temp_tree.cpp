#include "temp_tree.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "client.hpp"
#include "fd.hpp"

namespace testkit {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw TestError(what + ": " + std::strerror(errno));
}

std::string temporary_directory(bool prefer_tmpfs) {
    if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) return tmp;
    if (prefer_tmpfs && ::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    return "/tmp";
}

}  // namespace

TempTree::TempTree(std::string_view name, bool prefer_tmpfs) {
    std::string pattern =
        temporary_directory(prefer_tmpfs) + "/iolab-" + std::string(name) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp " + pattern);
    path_ = pattern;
}

TempTree::TempTree(const Kept& directory) : path_(directory.path), remove_(false) {
    std::error_code error;
    std::filesystem::create_directories(path_, error);
    if (error) throw TestError("cannot make " + path_ + ": " + error.message());
    if (!std::filesystem::is_empty(path_, error) || error)
        throw TestError(path_ + " is not an empty directory");
}

TempTree::~TempTree() {
    if (!remove_) return;
    // A file left unreadable (mode 000) is still removed: its directory is ours.
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string TempTree::at(std::string_view relative) const {
    return path_ + "/" + std::string(relative);
}

std::string TempTree::file(std::string_view relative, std::string_view content) const {
    std::string path = at(relative);
    iolab::Fd file(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    if (!file) fail("open " + path);
    while (!content.empty()) {
        ssize_t n = ::write(file.get(), content.data(), content.size());
        if (n <= 0) fail("write " + path);
        content.remove_prefix(static_cast<std::size_t>(n));
    }
    return path;
}

std::string TempTree::sparse_file(std::string_view relative, std::uint64_t size) const {
    std::string path = at(relative);
    iolab::Fd file(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    if (!file || ::ftruncate(file.get(), static_cast<off_t>(size)) < 0) fail("sparse file " + path);
    return path;
}

void TempTree::write_at(std::string_view relative, std::uint64_t offset,
                        std::string_view bytes) const {
    std::string path = at(relative);
    iolab::Fd file(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!file || ::pwrite(file.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)) !=
                     static_cast<ssize_t>(bytes.size()))
        fail("pwrite " + path);
}

std::string TempTree::directory(std::string_view relative) const {
    std::string path = at(relative);
    if (::mkdir(path.c_str(), 0755) < 0) fail("mkdir " + path);
    return path;
}

std::string TempTree::fifo(std::string_view relative) const {
    std::string path = at(relative);
    if (::mkfifo(path.c_str(), 0644) < 0) fail("mkfifo " + path);
    return path;
}

std::string TempTree::unix_socket(std::string_view relative) const {
    std::string path = at(relative);
    iolab::Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path)
        throw TestError("path too long for a UNIX socket: " + path);
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        fail("bind a UNIX socket at " + path);
    return path;
}

std::string TempTree::symlink(std::string_view relative, const std::string& target) const {
    std::string path = at(relative);
    if (::symlink(target.c_str(), path.c_str()) < 0) fail("symlink " + path);
    return path;
}

void TempTree::set_mode(std::string_view relative, unsigned mode) const {
    std::string path = at(relative);
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) < 0) fail("chmod " + path);
}

std::string read_whole_file(const std::string& path) {
    iolab::Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) fail("open " + path);
    std::string bytes;
    char chunk[65536];
    for (;;) {
        ssize_t n = ::read(file.get(), chunk, sizeof chunk);
        if (n < 0) fail("read " + path);
        if (n == 0) return bytes;
        bytes.append(chunk, static_cast<std::size_t>(n));
    }
}

std::string prepared_base(const std::string& root, std::string_view stamp) {
    std::filesystem::path dir = std::filesystem::absolute(root).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "DIR/" names DIR
    std::string base = dir.parent_path().string();
    std::string stamp_path = base + "/" + tree_stamp_name;
    std::string found;
    try {
        found = read_whole_file(stamp_path);
    } catch (const TestError&) {
    }
    if (dir.filename() != "root" || found != std::string(stamp) + "\n")
        throw TestError("--root " + root + " is not a tree this suite prepared (want BASE/root, " +
                        stamp_path + " saying \"" + std::string(stamp) +
                        "\"): run the suite with --prepare-root BASE, then serve BASE/root");
    return base;
}

std::string unique_secret() {
    return "IOLAB-SECRET-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "\n";
}

}  // namespace testkit
