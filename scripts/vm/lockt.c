/*
 * lockt: holds and tests file locks for the kernel-client lock scenarios (tests/kernel/locks-*),
 * driven one command per line on stdin, one answer per line on stdout, so that one process can
 * keep its locks across the steps of a scenario. In the guest it takes classic POSIX locks and
 * flock(2) locks, as applications on an NFS mount do; on the host, with --ofd, open file
 * description locks (F_OFD_*), as a host process that shares the exported files would.
 *
 * usage: lockt [--ofd] FILE
 *
 * Commands (TYPE is r or w; LEN 0 means to the end of the file):
 *   lock TYPE START LEN    F_SETLK (F_OFD_SETLK):   ok | EAGAIN (EACCES too) | E<name>
 *   lockw TYPE START LEN   F_SETLKW (F_OFD_SETLKW): ok | E<name>, once it is granted
 *   unlock START LEN       F_UNLCK:                 ok | E<name>
 *   test TYPE START LEN    F_GETLK (F_OFD_GETLK):   free | held TYPE START LEN PID
 *   flock sh|ex|un [nb]    flock(2):                ok | EAGAIN | E<name>
 *   close                  closes FILE (dropping its locks); the next command reopens it
 *   quit
 * Exits 2 on a bad command line or when FILE cannot be opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *path;
static int fd = -1;
static int ofd;

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void answer_errno(int e)
{
    const char *name = strerrorname_np(e);
    if (name != NULL)
        answer("%s", name);
    else
        answer("E%d", e);
}

static int ensure_open(void)
{
    if (fd >= 0)
        return 0;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -1 : 0;
}

static int parse_range(const char *start, const char *len, struct flock *fl)
{
    char *end;
    errno = 0;
    long long s = strtoll(start, &end, 10);
    if (errno || *end)
        return -1;
    long long l = strtoll(len, &end, 10);
    if (errno || *end)
        return -1;
    fl->l_whence = SEEK_SET;
    fl->l_start = s;
    fl->l_len = l;
    return 0;
}

static int parse_type(const char *t, short *type)
{
    if (strcmp(t, "r") == 0)
        *type = F_RDLCK;
    else if (strcmp(t, "w") == 0)
        *type = F_WRLCK;
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--ofd") == 0) {
        ofd = 1;
        path = argv[2];
    } else if (argc == 2) {
        path = argv[1];
    } else {
        fprintf(stderr, "usage: lockt [--ofd] FILE\n");
        return 2;
    }
    if (ensure_open() < 0) {
        fprintf(stderr, "lockt: %s: %s\n", path, strerror(errno));
        return 2;
    }
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *w[5] = { 0 };
        int n = 0;
        for (char *tok = strtok(line, " \t\n"); tok != NULL && n < 5; tok = strtok(NULL, " \t\n"))
            w[n++] = tok;
        if (n == 0)
            continue;
        if (strcmp(w[0], "quit") == 0)
            return 0;
        if (strcmp(w[0], "close") == 0) {
            if (fd >= 0)
                close(fd);
            fd = -1;
            answer("ok");
            continue;
        }
        if (ensure_open() < 0) {
            answer_errno(errno);
            continue;
        }
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        if ((strcmp(w[0], "lock") == 0 || strcmp(w[0], "lockw") == 0 || strcmp(w[0], "test") == 0) &&
            n == 4 && parse_type(w[1], &fl.l_type) == 0 && parse_range(w[2], w[3], &fl) == 0) {
            int cmd;
            if (w[0][0] == 't')
                cmd = ofd ? F_OFD_GETLK : F_GETLK;
            else if (w[0][4] == 'w')
                cmd = ofd ? F_OFD_SETLKW : F_SETLKW;
            else
                cmd = ofd ? F_OFD_SETLK : F_SETLK;
            int r;
            do
                r = fcntl(fd, cmd, &fl);
            while (r < 0 && errno == EINTR && cmd != F_SETLK && cmd != F_OFD_SETLK);
            if (r < 0) {
                answer_errno(errno == EACCES ? EAGAIN : errno);
            } else if (w[0][0] != 't') {
                answer("ok");
            } else if (fl.l_type == F_UNLCK) {
                answer("free");
            } else {
                answer("held %s %lld %lld %d", fl.l_type == F_WRLCK ? "w" : "r", (long long)fl.l_start,
                    (long long)fl.l_len, (int)fl.l_pid);
            }
            continue;
        }
        if (strcmp(w[0], "unlock") == 0 && n == 3 && parse_range(w[1], w[2], &fl) == 0) {
            fl.l_type = F_UNLCK;
            if (fcntl(fd, ofd ? F_OFD_SETLK : F_SETLK, &fl) < 0)
                answer_errno(errno);
            else
                answer("ok");
            continue;
        }
        if (strcmp(w[0], "flock") == 0 && (n == 2 || (n == 3 && strcmp(w[2], "nb") == 0))) {
            int op;
            if (strcmp(w[1], "sh") == 0)
                op = LOCK_SH;
            else if (strcmp(w[1], "ex") == 0)
                op = LOCK_EX;
            else if (strcmp(w[1], "un") == 0)
                op = LOCK_UN;
            else {
                answer("EINVAL");
                continue;
            }
            if (n == 3)
                op |= LOCK_NB;
            int r;
            do
                r = flock(fd, op);
            while (r < 0 && errno == EINTR);
            if (r < 0)
                answer_errno(errno);
            else
                answer("ok");
            continue;
        }
        answer("EINVAL");
    }
    return 0;
}
