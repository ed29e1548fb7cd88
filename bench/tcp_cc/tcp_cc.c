/* libiolab_tcp_cc.so: run any program's TCP under a chosen congestion control.
 *
 *   IOLAB_TCP_CONGESTION=cubic LD_PRELOAD=.../libiolab_tcp_cc.so nginx ...
 *
 * Every TCP socket the program creates gets setsockopt(TCP_CONGESTION)
 * before it is used; a listener's accepted connections inherit it. The
 * runner uses it to measure one server under cubic and under the machine's
 * default in the same run, without changing the system-wide sysctl.
 * If the kernel refuses the algorithm (not loaded, or not in
 * tcp_allowed_congestion_control for an unprivileged user), socket() fails
 * with that error, so a run never measures another algorithm than it says.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*socket_fn)(int, int, int);

int socket(int domain, int type, int protocol) {
    static socket_fn real_socket;
    if (!real_socket) real_socket = (socket_fn)dlsym(RTLD_NEXT, "socket");
    int fd = real_socket(domain, type, protocol);
    const char* algorithm = getenv("IOLAB_TCP_CONGESTION");
    int tcp = (domain == AF_INET || domain == AF_INET6) && (type & 0xff) == SOCK_STREAM &&
              (protocol == 0 || protocol == IPPROTO_TCP);
    if (fd < 0 || !tcp || !algorithm || !*algorithm) return fd;
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, algorithm, strlen(algorithm)) != 0) {
        int saved = errno;
        fprintf(stderr, "libiolab_tcp_cc: TCP_CONGESTION %s: %s\n", algorithm, strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
