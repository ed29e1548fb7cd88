#include "adversarial.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>

namespace adversarial {

namespace {

// The stamp beside a prepared tree: bump the number when the tree changes.
constexpr const char* tree_stamp = "iolab_adversarial tree 1";

void fill_contents(DocumentRoot& d) {
    d.hello_txt = "hello, world\n";
    d.index_html = "<!doctype html>\n<title>iolab adversarial</title>\n";
    d.percent_41_txt = "the file named %41.txt\n";
    d.a_txt = "the file named A.txt\n";
}

// Writes the tree under `tree` (BASE): secret.txt, root/..., the stamp.
void write_tree(const TempTree& tree, const DocumentRoot& d) {
    tree.file("secret.txt", d.secret);
    tree.file(tree_stamp_name, std::string(tree_stamp) + "\n");
    tree.directory("root");
    tree.file("root/hello.txt", d.hello_txt);
    tree.file("root/index.html", d.index_html);
    tree.file("root/%41.txt", d.percent_41_txt);
    tree.file("root/A.txt", d.a_txt);
    tree.sparse_file("root/body16.bin", body16_size);
    tree.sparse_file("root/body64.bin", body64_size);
    tree.sparse_file("root/huge.bin", huge_size);
    for (std::uint64_t at : huge_marker_offsets())
        tree.write_at("root/huge.bin", at, huge_marker(at));
    tree.directory("root/subdir");
    tree.file("root/subdir/inner.txt", "inside a subdirectory\n");
    tree.fifo("root/fifo");
    tree.unix_socket("root/socket");
    tree.symlink("root/escape_relative", "../secret.txt");
    tree.symlink("root/escape_absolute", tree.path() + "/secret.txt");
    tree.symlink("root/escape_directory", tree.path());
    tree.symlink("root/escape_device", "/dev/zero");
    tree.symlink("root/swap", "hello.txt");
}

std::unique_ptr<DocumentRoot> make_document_root() {
    auto d = std::make_unique<DocumentRoot>();
    fill_contents(*d);
    if (options().connected()) {
        // The tree --prepare-root wrote, which the running server serves.
        d->base = prepared_base(options().connect_root, tree_stamp);
        d->root = d->base + "/root";
        d->secret = read_whole_file(d->base + "/secret.txt");
        return d;
    }
    d->base = d->tree.path();
    d->root = d->base + "/root";
    d->secret = unique_secret();
    write_tree(d->tree, *d);
    return d;
}

std::unique_ptr<DocumentRoot> the_root;

}  // namespace

SuiteOptions& options() {
    static SuiteOptions o;
    return o;
}

const DocumentRoot& document_root() {
    if (!the_root) the_root = make_document_root();
    return *the_root;
}

void remove_document_root() {
    the_root.reset();
}

void prepare_root(const std::string& dir) {
    TempTree tree(TempTree::Kept{dir});
    DocumentRoot d;
    fill_contents(d);
    d.secret = unique_secret();
    write_tree(tree, d);
}

bool answers(Connection& c, const std::string& word) {
    if (options().http_only) {
        c.send("GET /hello.txt HTTP/1.1\r\nHost: iolab\r\n\r\n");
        HttpResponse r = read_http_response(c);
        return r.status == 200 && r.body == document_root().hello_txt;
    }
    return line_exchange(c, "ECHO " + word) == word + "\n";
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
    : process_(options().start(document_root().root, document_root().base, std::move(extra))) {}

Connection Server::connect(int receive_buffer) const {
    return process_.connect(receive_buffer);
}

void Server::check_alive_then_stop(int busy_retries) {
    if (!measurable()) {
        // Not ours to stop (--connect): it must still answer, that is all.
        bool alive = false;
        for (int attempt = 0; attempt <= busy_retries && !alive; ++attempt) {
            Connection probe = connect();
            alive = answers(probe, "still alive");
        }
        CHECK(alive);
        return;
    }
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
