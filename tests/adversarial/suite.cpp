#include "suite.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

namespace adversarial {

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw ConformanceError("cannot write " + path.string());
}

// A file of `size` bytes that reads as zeros and takes no disk: a hole.
void make_sparse_file(const fs::path& path, std::uint64_t size) {
    iolab::Fd file(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    if (!file || ::ftruncate(file.get(), static_cast<off_t>(size)) < 0)
        throw ConformanceError("cannot make the sparse file " + path.string());
}

// A UNIX socket's name in the file system: another file that is not a
// regular file. The socket is closed at once; its name stays.
void make_socket_file(const fs::path& path) {
    iolab::Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof address.sun_path)
        throw ConformanceError("path too long for a UNIX socket: " + path.string());
    path.string().copy(address.sun_path, sizeof address.sun_path - 1);
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        throw ConformanceError("cannot bind a UNIX socket at " + path.string());
}

// Where the temporary document root goes: $TMPDIR if set, else /dev/shm if
// there is one (a tmpfs reads a hole as the shared zero page, where a disk
// file system first fills the page cache with zeros: seconds for huge.bin),
// else /tmp.
std::string temporary_directory() {
    if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) return tmp;
    if (::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    return "/tmp";
}

DocumentRoot make_document_root() {
    std::string pattern = temporary_directory() + "/iolab-adversarial-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw ConformanceError("mkdtemp " + pattern);

    DocumentRoot d;
    d.base = pattern;
    d.root = d.base + "/root";
    d.hello_txt = "hello, world\n";
    d.index_html = "<!doctype html>\n<title>iolab adversarial</title>\n";
    d.percent_41_txt = "the file named %41.txt\n";
    d.a_txt = "the file named A.txt\n";
    d.secret = "IOLAB-SECRET-" + std::to_string(::getpid()) + "-" +
               std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "\n";

    fs::create_directory(d.root);
    write_file(d.base + "/secret.txt", d.secret);
    write_file(d.root + "/hello.txt", d.hello_txt);
    write_file(d.root + "/index.html", d.index_html);
    write_file(d.root + "/%41.txt", d.percent_41_txt);
    write_file(d.root + "/A.txt", d.a_txt);
    make_sparse_file(d.root + "/body16.bin", body16_size);
    make_sparse_file(d.root + "/body64.bin", body64_size);
    make_sparse_file(d.root + "/huge.bin", huge_size);
    {
        iolab::Fd huge(::open((d.root + "/huge.bin").c_str(), O_WRONLY | O_CLOEXEC));
        for (std::uint64_t at : huge_marker_offsets())
            if (::pwrite(huge.get(), huge_marker(at).data(), 16, static_cast<off_t>(at)) != 16)
                throw ConformanceError("cannot write the markers of huge.bin");
    }
    fs::create_directory(d.root + "/subdir");
    write_file(d.root + "/subdir/inner.txt", "inside a subdirectory\n");
    if (::mkfifo((d.root + "/fifo").c_str(), 0644) < 0) throw ConformanceError("mkfifo");
    make_socket_file(d.root + "/socket");
    fs::create_symlink("../secret.txt", d.root + "/escape_relative");
    fs::create_symlink(d.base + "/secret.txt", d.root + "/escape_absolute");
    fs::create_directory_symlink(d.base, d.root + "/escape_directory");
    fs::create_symlink("/dev/zero", d.root + "/escape_device");
    fs::create_symlink("hello.txt", d.root + "/swap");
    return d;
}

std::unique_ptr<DocumentRoot> the_root;

std::string new_stderr_path() {
    static int count = 0;
    return document_root().base + "/server-" + std::to_string(++count) + ".stderr";
}

LaunchOptions with_run_environment(LaunchOptions launch) {
    const std::vector<std::string>& env = options().server_env;
    launch.environment.insert(launch.environment.begin(), env.begin(), env.end());
    return launch;
}

}  // namespace

SuiteOptions& options() {
    static SuiteOptions o;
    return o;
}

const DocumentRoot& document_root() {
    if (!the_root) the_root = std::make_unique<DocumentRoot>(make_document_root());
    return *the_root;
}

void remove_document_root() {
    if (!the_root) return;
    std::error_code ignored;
    fs::remove_all(the_root->base, ignored);
    the_root.reset();
}

std::vector<std::uint64_t> huge_marker_offsets() {
    const std::uint64_t two_gib = std::uint64_t{1} << 31;
    // The start, either side of 2^31 (a signed 32-bit offset wraps there),
    // sendfile()'s per-call limit, a copy chunk past 2^31, and the end.
    return {0, 0x7ffff000 - 8, two_gib - 8, two_gib + 8, two_gib + 65536 - 8, huge_size - 16};
}

std::string huge_marker(std::uint64_t offset) {
    // Appended piece by piece: GCC 12 at -O2 misreads "@" + std::string
    // (a false -Wrestrict about a memcpy of 2^63 bytes).
    std::string text(1, '@');
    text += std::to_string(offset);
    text.resize(16, '#');
    return text;
}

Server::Server(LaunchOptions extra)
    : process_(options().server, document_root().root, options().server_args, new_stderr_path(),
               with_run_environment(std::move(extra))) {}

Connection Server::connect(int receive_buffer) const {
    return Connection(process_.host(), process_.port(), receive_buffer);
}

void Server::check_alive_then_stop(int busy_retries) {
    std::optional<int> status = process_.wait_for_exit(0ms);
    INFO("server stderr: " << printable(process_.stderr_text(), 3000));
    REQUIRE(!status.has_value());  // else it died: crashed, or killed by SIGPIPE
    CHECK(sanitizer_report(process_.stderr_text()) == "");
    std::string reply;
    for (int attempt = 0; attempt <= busy_retries && reply != "still alive\n"; ++attempt) {
        Connection probe = connect();
        reply = line_exchange(probe, "ECHO still alive");
    }
    CHECK(printable(reply) == printable("still alive\n"));
    process_.send_signal(SIGTERM);
    status = process_.wait_for_exit(io_timeout);
    REQUIRE(status.has_value());
    CHECK(describe_wait_status(*status) == "exited with status 0");
    CHECK(sanitizer_report(process_.stderr_text()) == "");
}

BackgroundSend::BackgroundSend(Connection& c, std::string bytes, bool until_closed)
    : bytes_(std::move(bytes)), thread_([this, &c, until_closed] {
          try {
              if (until_closed) {
                  sent_ = c.send_until_closed(bytes_);
              } else {
                  c.send(bytes_);
                  sent_ = bytes_.size();
              }
          } catch (...) {
              error_ = std::current_exception();
          }
      }) {}

BackgroundSend::~BackgroundSend() {
    if (thread_.joinable()) thread_.join();
}

std::size_t BackgroundSend::wait() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return sent_;
}

}  // namespace adversarial
