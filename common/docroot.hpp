// The document root: every file a request names is opened *beneath* it.
//
// Paths are resolved by openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS),
// so the kernel itself refuses `..` that climbs out, absolute symlinks and
// symlinks pointing outside, at every step of the walk: there is no window
// between a check and the open for a swapped symlink to slip through.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fd.hpp"

namespace iolab {

struct OpenedFile {
    Fd file;                 // valid only when status == 200
    std::uint64_t size = 0;  // bytes in the file
    int status = 0;  // 200, 400 (bad path), 403 (forbidden), 404 (not found), 503 (out of fds)
};

class DocRoot {
public:
    // Opens the directory. Throws std::system_error if it is missing or not a directory.
    explicit DocRoot(const std::string& directory);

    // Opens a regular file named by `path` (already percent-decoded; leading
    // slashes allowed; "" or "/" means index.html). Never blocks: FIFOs and
    // devices are refused (403), as are directories.
    OpenedFile open(std::string_view path) const;

private:
    Fd dir_;
};

// Decodes %XX escapes once. Returns false on a malformed escape or a NUL byte.
bool percent_decode(std::string_view in, std::string& out);

// The Content-Type for a path, by its extension (application/octet-stream if unknown).
std::string_view content_type(std::string_view path);

}  // namespace iolab
