/* The benchmarks' payload: stamps CLOCK_MONOTONIC at the moments that matter.
 *
 *   stamp start            print the time of its first instruction, exit 0
 *   stamp signals          block every signal, print "ready", then for each signal received
 *                          print "<signo> <ns>"; exit 0 on SIGTERM
 *   stamp idle             block every signal, print "ready", exit 0 on SIGTERM (or RTMIN+3)
 *   stamp notify N RATE [DELAY_MS|go]
 *                          after DELAY_MS (default 0), send N "STATUS=<ns>" datagrams to
 *                          $NOTIFY_SOCKET, RATE a second (0: as fast as possible), then
 *                          "STATUS=done"; exit 0. With "go": print "ready", send once
 *                          SIGUSR1 comes, then exit 0 on SIGTERM only: a sender must live
 *                          until its messages are read (the shim, as systemd, drops those
 *                          of a sender already gone)
 *   stamp-runtime ...      (called by that name, as a monitor's OCI runtime) write the time of
 *                          its first instruction to $STAMP_RUNTIME_OUT and fail (exit 1): how
 *                          long a monitor takes from its exec to spawning the runtime
 *   stamp lines COUNT LENGTH
 *                          write COUNT lines of LENGTH bytes (LENGTH - 1 'x', then '\n') to
 *                          stdout, 64 KiB at a time, as fast as the reader takes them; exit 0
 *
 * C, statically linked, so that the time between exec and the stamp is a few microseconds,
 * the same for every monitor it runs under.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void say(const char *text) {
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(1, text + done, len - done);
        if (n <= 0) return;
        done += (size_t) n;
    }
}

static int block_all(sigset_t *set) {
    sigfillset(set);
    return sigprocmask(SIG_BLOCK, set, NULL);
}

static void wait_for(int signo) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    while (sigwaitinfo(&one, NULL) < 0) {}
}

static int notify(long count, long rate, const char *when) {
    int go = when && strcmp(when, "go") == 0;
    long delay_ms = when && !go ? atol(when) : 0;
    if (go) {
        /* the driver says when: once the monitor in between has settled */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        say("ready\n");
        wait_for(SIGUSR1);
    }
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path) return 2;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) return 3;
    long long began = now_ns();
    char buf[64];
    for (long i = 0; i < count; i++) {
        if (rate > 0) {
            long long due = began + i * 1000000000LL / rate, wait = due - now_ns();
            if (wait > 0) {
                struct timespec ts = {wait / 1000000000LL, wait % 1000000000LL};
                nanosleep(&ts, NULL);
            }
        }
        int len = snprintf(buf, sizeof(buf), "STATUS=%lld", now_ns());
        while (send(fd, buf, len, 0) < 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);  /* the receiver's queue is full: wait, never drop */
        }
    }
    send(fd, "STATUS=done", 11, 0);
    if (go) wait_for(SIGTERM);
    return 0;
}

static int lines(long long count, long length) {
    static char buf[1 << 16];
    if (length < 1 || length > (long) sizeof(buf)) return 2;
    long per = (long) sizeof(buf) / length;  /* whole lines per write */
    for (long i = 0; i < per * length; i++) buf[i] = i % length == length - 1 ? '\n' : 'x';
    while (count > 0) {
        long n = count < per ? (long) count : per;
        size_t len = (size_t) (n * length), done = 0;
        while (done < len) {
            ssize_t w = write(1, buf + done, len - done);
            if (w <= 0) return 1;
            done += (size_t) w;
        }
        count -= n;
    }
    return 0;
}

int main(int argc, char **argv) {
    long long first = now_ns();
    char line[64];
    const char *name = strrchr(argv[0], '/');
    if (strcmp(name ? name + 1 : argv[0], "stamp-runtime") == 0) {
        const char *out = getenv("STAMP_RUNTIME_OUT");
        FILE *f = out ? fopen(out, "wx") : NULL; /* the first call only: a delete may follow */
        if (f) {
            fprintf(f, "%lld\n", first);
            fclose(f);
        }
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "start";
    if (strcmp(mode, "start") == 0) {
        snprintf(line, sizeof(line), "%lld\n", first);
        say(line);
        return 0;
    }
    if (strcmp(mode, "lines") == 0)
        return lines(argc > 2 ? atoll(argv[2]) : 0, argc > 3 ? atol(argv[3]) : 100);
    if (strcmp(mode, "notify") == 0)
        return notify(argc > 2 ? atol(argv[2]) : 1, argc > 3 ? atol(argv[3]) : 0, argc > 4 ? argv[4] : NULL);
    sigset_t set;
    block_all(&set);
    say("ready\n");
    int stop_rt = SIGRTMIN + 3;
    for (;;) {
        siginfo_t info;
        int signo = sigwaitinfo(&set, &info);
        if (signo < 0) continue;
        long long t = now_ns();
        if (strcmp(mode, "signals") == 0) {
            snprintf(line, sizeof(line), "%d %lld\n", signo, t);
            say(line);
        }
        if (signo == SIGTERM || signo == stop_rt) return 0;
    }
}
