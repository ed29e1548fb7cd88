#include "conformance.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

namespace conformance {

namespace {

// splitmix64: a tiny, good-enough generator for bytes that do not compress
// and that no off-by-one could reproduce by accident.
std::string pseudo_random_bytes(std::size_t size, std::uint64_t seed) {
    std::string bytes(size, '\0');
    std::uint64_t state = seed;
    for (std::size_t i = 0; i < size; i += 8) {
        state += 0x9e3779b97f4a7c15ULL;
        std::uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        std::memcpy(bytes.data() + i, &z, std::min<std::size_t>(8, size - i));
    }
    return bytes;
}

// The stamp beside a prepared tree: bump the number when the tree changes.
constexpr const char* tree_stamp = "iolab_conformance tree 1";
const std::string index_html =
    "<!doctype html>\n<title>iolab conformance</title>\n<p>the index</p>\n";
const std::string hello_txt = "hello, world\n";

// Writes the tree under `tree` (BASE): secret.txt, root/..., the stamp.
void write_tree(const TempTree& tree, const std::string& secret) {
    tree.file("secret.txt", secret);
    tree.file(tree_stamp_name, std::string(tree_stamp) + "\n");
    tree.directory("root");
    tree.file("root/index.html", index_html);
    tree.file("root/hello.txt", hello_txt);
    tree.file("root/empty.txt", "");
    tree.file("root/with space.txt", "a name with a space\n");
    tree.file("root/big.bin", big_file());
    tree.directory("root/subdir");
    tree.file("root/subdir/inner.txt", "inside a subdirectory\n");
    tree.fifo("root/fifo");
    tree.file("root/unreadable.txt", "mode 000\n");
    tree.set_mode("root/unreadable.txt", 0);
    tree.symlink("root/escape_relative", "../secret.txt");
    tree.symlink("root/escape_absolute", tree.path() + "/secret.txt");
    tree.symlink("root/escape_directory", tree.path());
}

std::unique_ptr<DocumentRoot> make_document_root() {
    auto d = std::make_unique<DocumentRoot>();
    d->index_html = index_html;
    d->hello_txt = hello_txt;
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
    write_tree(d->tree, d->secret);
    return d;
}

// The end of a server's stderr: enough to show a crash, never a flood.
std::string tail(const std::string& text, std::size_t bytes = 4000) {
    return text.size() > bytes ? "..." + text.substr(text.size() - bytes) : text;
}

std::unique_ptr<DocumentRoot> the_root;
std::unique_ptr<ServerProcess> shared_server;
std::string last_test_on_shared_server;  // who to suspect when it is found dead
std::string broken_server;               // why a freshly started server failed its health check

// Empty when the server is alive, clean and answering; otherwise what is wrong.
// Without the process (--connect), only whether it answers.
std::string health_problem(ServerProcess& s) {
    if (s.has_process()) {
        if (std::optional<int> status = s.wait_for_exit(std::chrono::milliseconds(0)))
            return "died (" + describe_wait_status(*status) + ")";
        if (std::string report = sanitizer_report(s.stderr_text()); !report.empty())
            return "reported a sanitizer error";
    }
    try {
        Connection probe = s.connect();
        if (options().http_only) {
            probe.send(http_request("GET", "/hello.txt"));
            HttpResponse r = read_http_response(probe);
            if (r.status != 200 || r.body != hello_txt)
                return "answered a health-check GET /hello.txt with " +
                       printable(r.status_line + " " + r.body);
        } else if (std::string reply = line_exchange(probe, "ECHO health check");
                   reply != "health check\n") {
            return "answered a health-check ECHO with " + printable(reply);
        }
    } catch (const TestError& e) {
        return std::string("stopped answering: ") + e.what();
    }
    return {};
}

}  // namespace

SuiteOptions& options() {
    static SuiteOptions o;
    return o;
}

const std::string& big_file() {
    static const std::string bytes = pseudo_random_bytes(big_file_size, 20240917);
    return bytes;
}

const DocumentRoot& document_root() {
    if (!the_root) the_root = make_document_root();
    return *the_root;
}

ServerProcess start_server() {
    return options().start(document_root().root, document_root().base);
}

ServerProcess& server() {
    // Checked once per test case (not at every call: a test case holding a
    // connection would block a serial server's health check).
    std::string current_test = Catch::getResultCapture().getCurrentTestName();
    if (shared_server && current_test != last_test_on_shared_server) {
        if (std::string problem = health_problem(*shared_server); !problem.empty()) {
            std::string stderr_tail = tail(shared_server->stderr_text());
            shared_server.reset();
            FAIL_CHECK("the shared server " << problem << " after test case \""
                                            << last_test_on_shared_server
                                            << "\"; its stderr ends with:\n"
                                            << stderr_tail << "\n(a fresh server takes over)");
        }
    }
    if (!shared_server) {
        // A server that fails even when fresh would fail every test case
        // after a 10 s timeout each: say so once, then fail fast.
        if (!broken_server.empty())
            FAIL("not starting the server again: a fresh one " << broken_server);
        try {
            shared_server.reset(new ServerProcess(start_server()));
        } catch (const TestError& e) {
            broken_server = std::string("failed to start: ") + e.what();
            throw;
        }
        if (std::string problem = health_problem(*shared_server); !problem.empty()) {
            broken_server = problem + "; stderr ends with:\n" + tail(shared_server->stderr_text());
            shared_server.reset();
            FAIL("a freshly started server " << broken_server);
        }
    }
    last_test_on_shared_server = current_test;
    return *shared_server;
}

int finish_shared_server() {
    if (!shared_server) return 0;
    ServerProcess& s = *shared_server;
    if (!s.has_process()) {
        // Not ours to stop (--connect): it must still answer, that is all.
        std::string problem = health_problem(s);
        if (!problem.empty())
            std::cerr << "conformance: the server " << problem
                      << " at the end of the run (last test case \"" << last_test_on_shared_server
                      << "\")\n";
        shared_server.reset();
        return problem.empty() ? 0 : 1;
    }
    s.send_signal(SIGTERM);
    std::optional<int> status = s.wait_for_exit(io_timeout);
    std::string report = sanitizer_report(s.stderr_text());
    int problems = 0;
    if (!report.empty()) {
        std::cerr << "conformance: the shared server reported a sanitizer error (last test case \""
                  << last_test_on_shared_server << "\"):\n"
                  << report << "\n";
        problems = 1;
    } else if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        std::cerr
            << "conformance: the shared server did not exit 0 on SIGTERM at the end of the run ("
            << (status ? describe_wait_status(*status) : "still running after 10 s")
            << "); stderr ends with:\n"
            << tail(s.stderr_text()) << "\n";
        problems = 1;
    }
    shared_server.reset();
    return problems;
}

void remove_document_root() {
    the_root.reset();
}

void prepare_root(const std::string& dir) {
    TempTree tree(TempTree::Kept{dir});
    write_tree(tree, unique_secret());
}

}  // namespace conformance
