// What every test case shares: the command line (which server, with which
// expectations), the document root the server serves, and the server itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server_process.hpp"
#include "temp_tree.hpp"

namespace conformance {

using namespace testkit;  // the client, the server process, the /proc probes

// What the stage's I/O model lets it do. The defaults are the full contract
// of docs/protocol.md; a stage whose model legitimately differs says so with a flag
// (passed by iolab_conformance() in cmake/iolab.cmake), and the test cases
// read these fields: one field, one flag, no copy of the suite.
//
// To add one: a field here, its flag in main.cpp's `expectation_flags()`,
// and the test cases that read it.
struct Expectations {
    // Serves one client at a time: a second client waits until the first
    // leaves (stage01). Flag: --serial.
    bool serial = false;
};

using SuiteOptions = testkit::SuiteOptions<Expectations>;
SuiteOptions& options();
inline const Expectations& expect() {
    return options().expect;
}

// The document root, made once per run in a fresh temporary directory (with
// --connect: the tree --prepare-root wrote, BASE/root being --root):
//
//   BASE/secret.txt        outside the root: its content must never be served
//   BASE/root/             the root given to the server, holding:
//     index.html hello.txt empty.txt "with space.txt" big.bin (64 MiB)
//     subdir/inner.txt     a directory (refused as a path, no listing)
//     fifo                 a FIFO with no writer (refused, without hanging)
//     unreadable.txt       mode 000 (refused unless we run as root)
//     escape_relative -> ../secret.txt   symlinks out of the root (refused)
//     escape_absolute -> BASE/secret.txt
//     escape_directory -> BASE           (then escape_directory/secret.txt)
struct DocumentRoot {
    TempTree tree{"conformance"};  // BASE (unless --connect), removed with everything in it
    std::string base;
    std::string root;
    std::string index_html, hello_txt;
    std::string secret;  // the content of BASE/secret.txt: a unique marker
};
const DocumentRoot& document_root();
// big.bin: 64 MiB of pseudo-random bytes, kept in memory to compare with.
const std::string& big_file();
inline constexpr std::size_t big_file_size = 64 * 1024 * 1024;

// A server of the run's (--server, --server-arg, --server-env) serving the
// document root, its stderr in a file in BASE.
ServerProcess start_server();

// The server most test cases share, started on first use. The first time a
// test case asks for it, checks that it is still alive and answering (an ECHO
// round trip): if it died or hung since the previous test case, fails the
// current one with what happened (and the stderr tail) and starts a fresh
// server, so one crash reads as one failure, not as every later test timing out.
ServerProcess& server();

// Stops the shared server with SIGTERM at the end of the run and reports
// (on stderr) a sanitizer report, a crash or an unclean exit. Returns the
// number of problems found (0 or 1).
int finish_shared_server();

// Removes BASE. Called once at the end of the run.
void remove_document_root();

// --prepare-root DIR: writes the tree as BASE = DIR, for a server started
// on DIR/root and tested with --connect.
void prepare_root(const std::string& dir);

}  // namespace conformance
