/*
 * relay: the far end of one qemu `guestfwd=...-cmd:` rule.
 *
 * libslirp spawns this program once per guest TCP connection, with stdin, stdout and stderr all
 * connected to the guest side of that connection. It connects to HOST:PORT, which must be a
 * loopback address or an address of this host (the rig adds such addresses to the `lo` of the
 * network namespace it creates, so nothing outside that namespace can be reached), optionally
 * from the local address FROM (so that the server sees one address per guest), and copies bytes
 * both ways until both directions are finished, passing half-closes on. It never prints
 * anything: every byte on stdout/stderr would reach the guest. Diagnostics go to the file named by
 * $RELAY_LOG, if set.
 *
 * usage: relay [--from FROM] HOST PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void note(const char *fmt, ...)
{
    const char *path = getenv("RELAY_LOG");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "relay[%d]: ", (int)getpid());
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
    fclose(f);
}

/* One direction of the copy: from `in` to `out`. `open` is cleared once `in` reached EOF (or
 * failed) and `out` has been shut down for writing. */
struct pipe_dir {
    int in;
    int out;
    int open;
};

static int pump(struct pipe_dir *d)
{
    char buf[65536];
    ssize_t n = read(d->in, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        shutdown(d->out, SHUT_WR);
        d->open = 0;
        return 0;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(d->out, buf + off, (size_t)(n - off));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            note("write: %s", strerror(errno));
            return -1;
        }
        off += w;
    }
    return 0;
}

/* Whether `a` is an address of this host: binding a socket to it succeeds only then. */
static int is_local(struct in_addr a)
{
    if ((ntohl(a.s_addr) >> 24) == 127)
        return 1;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = a };
    int ok = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in from = { .sin_family = AF_INET };
    int bind_from = 0;
    if (argc == 5 && strcmp(argv[1], "--from") == 0) {
        if (inet_pton(AF_INET, argv[2], &from.sin_addr) != 1) {
            note("bad source address %s", argv[2]);
            return 2;
        }
        bind_from = 1;
        argv += 2;
        argc -= 2;
    }
    if (argc != 3) {
        note("usage: relay [--from FROM] HOST PORT");
        return 2;
    }
    struct sockaddr_in to = { .sin_family = AF_INET };
    char *end = NULL;
    long port = strtol(argv[2], &end, 10);
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 || *end != '\0' || port <= 0 || port > 65535) {
        note("bad target %s %s", argv[1], argv[2]);
        return 2;
    }
    if (!is_local(to.sin_addr)) {
        note("refusing target %s: neither loopback nor an address of this host", argv[1]);
        return 2;
    }
    to.sin_port = htons((unsigned short)port);

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s >= 0 && bind_from && bind(s, (struct sockaddr *)&from, sizeof from) < 0) {
        note("bind %s: %s", argv[-1], strerror(errno));
        return 1;
    }
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
        note("connect %s:%ld: %s", argv[1], port, strerror(errno));
        return 1;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    /* The guest side is fd 0 for reading and fd 1 for writing (the same socket). */
    struct pipe_dir up = { .in = 0, .out = s, .open = 1 };
    struct pipe_dir down = { .in = s, .out = 1, .open = 1 };
    while (up.open || down.open) {
        struct pollfd p[2];
        int n = 0;
        int iu = -1, id = -1;
        if (up.open) {
            p[n] = (struct pollfd){ .fd = up.in, .events = POLLIN };
            iu = n++;
        }
        if (down.open) {
            p[n] = (struct pollfd){ .fd = down.in, .events = POLLIN };
            id = n++;
        }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            note("poll: %s", strerror(errno));
            return 1;
        }
        if (iu >= 0 && p[iu].revents && pump(&up) < 0)
            return 1;
        if (id >= 0 && p[id].revents && pump(&down) < 0)
            return 1;
    }
    return 0;
}
