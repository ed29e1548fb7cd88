#include "server.hpp"

#include <cstdio>

#include "counters.hpp"
#include "net.hpp"

namespace iolab {

void announce_listening(const ServerOptions& options, int listen_fd) {
    std::printf("listening on %s:%u\n", options.host.c_str(), unsigned{local_port(listen_fd)});
    std::fflush(stdout);
}

void print_summary(const std::string& program) {
    Stats& s = stats();
    std::printf("%s: %llu connections, %llu requests, %llu bytes sent\n", program.c_str(),
                static_cast<unsigned long long>(s.connections.load()),
                static_cast<unsigned long long>(s.requests.load()),
                static_cast<unsigned long long>(s.bytes_sent.load()));
    std::fflush(stdout);
}

}  // namespace iolab
