// The one document-root builder: a fresh temporary directory that a test
// fills with the files, FIFOs, sockets and symlinks its server must meet,
// removed with all it holds when the object goes away.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace testkit {

class TempTree {
public:
    // Makes `DIR/iolab-NAME-XXXXXX`. DIR is $TMPDIR if set; else, with
    // `prefer_tmpfs`, /dev/shm if there is one (a tmpfs reads a hole as the
    // shared zero page, where a disk file system first fills the page cache
    // with zeros: seconds for a sparse file of gigabytes); else /tmp.
    explicit TempTree(std::string_view name, bool prefer_tmpfs = false);
    // An existing directory to fill, left in place afterwards (the suites'
    // --prepare-root): made if missing, refused unless empty.
    struct Kept {
        std::string path;
    };
    explicit TempTree(const Kept& directory);
    ~TempTree();
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;

    const std::string& path() const { return path_; }

    // Each makes one entry at `relative` (to path()) and returns its full
    // path. A failure throws TestError: a test that cannot set up fails.
    std::string file(std::string_view relative, std::string_view content) const;
    // `size` bytes that read as zeros and take no disk: a hole.
    std::string sparse_file(std::string_view relative, std::uint64_t size) const;
    // `bytes` written over an existing file at `offset`.
    void write_at(std::string_view relative, std::uint64_t offset, std::string_view bytes) const;
    std::string directory(std::string_view relative) const;
    std::string fifo(std::string_view relative) const;
    // A UNIX socket's name: another file that is not a regular file. The
    // socket is closed at once; its name stays.
    std::string unix_socket(std::string_view relative) const;
    std::string symlink(std::string_view relative, const std::string& target) const;
    // chmod(2): e.g. 0 for a file nobody but root may read.
    void set_mode(std::string_view relative, unsigned mode) const;

private:
    std::string at(std::string_view relative) const;

    std::string path_;
    bool remove_ = true;
};

// A tree written by a suite's --prepare-root BASE is BASE/root plus what
// sits outside it, and BASE/iolab-tree.txt holding `stamp` (the suite and
// its tree's version). For --connect --root DIR: checks that DIR is BASE/root
// of such a tree and returns BASE; throws TestError saying what to do if not.
inline constexpr const char* tree_stamp_name = "iolab-tree.txt";
std::string prepared_base(const std::string& root, std::string_view stamp);
// A whole file's bytes; throws TestError if it cannot be read.
std::string read_whole_file(const std::string& path);

// A line found nowhere else ("IOLAB-SECRET-<pid>-<clock>\n"): the content of
// a file outside a document root, which no reply may ever carry.
std::string unique_secret();

}  // namespace testkit
