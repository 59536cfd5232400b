/*
 * The physical limits of moving messages between two processes over a
 * Unix socketpair, for the connection bench. No framing, no allocation:
 * what any message layer on a socketpair can at best reach.
 *
 * Usage: connection_limits rtt SAMPLES BATCH
 *   ping-pong of 1 byte between parent and a forked child; each sample is
 *   the mean microseconds per round trip over BATCH round trips.
 *   Prints: SAMPLES bare_rtt <us> <us> ...
 * Usage: connection_limits throughput SAMPLES BATCH SIZE
 *   the child writes BATCH messages of SIZE bytes per sample and the parent
 *   reads them into one reused buffer, then sends a 1-byte ack; each sample
 *   is MiB/s. Prints: SAMPLES bare_throughput <MiB/s> ...
 * A warm-up of one batch precedes the samples.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write");
        buf += n;
        len -= (size_t)n;
    }
}

static void read_all(int fd, char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read");
        buf += n;
        len -= (size_t)n;
    }
}

static int reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static void report(const char *name, const double *samples, int n) {
    printf("SAMPLES %s", name);
    for (int i = 0; i < n; i++) printf(" %.6f", samples[i]);
    printf("\n");
    fflush(stdout);
}

static int rtt(int samples, long batch) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    long total = (long)(samples + 1) * batch;
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(sv[0]);
        char c;
        for (long i = 0; i < total; i++) {
            read_all(sv[1], &c, 1);
            write_all(sv[1], &c, 1);
        }
        _exit(0);
    }
    close(sv[1]);
    double *out = calloc((size_t)samples, sizeof(double));
    char c = 'x';
    for (int s = -1; s < samples; s++) {
        double t0 = now_s();
        for (long i = 0; i < batch; i++) {
            write_all(sv[0], &c, 1);
            read_all(sv[0], &c, 1);
        }
        if (s >= 0) out[s] = (now_s() - t0) / (double)batch * 1e6;
    }
    if (reap(pid)) return 1;
    report("bare_rtt", out, samples);
    return 0;
}

static int throughput(int samples, long batch, size_t size) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    char *buf = malloc(size);
    memset(buf, 7, size);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(sv[0]);
        char ack;
        for (int s = -1; s < samples; s++) {
            for (long i = 0; i < batch; i++) write_all(sv[1], buf, size);
            read_all(sv[1], &ack, 1);
        }
        _exit(0);
    }
    close(sv[1]);
    double *out = calloc((size_t)samples, sizeof(double));
    for (int s = -1; s < samples; s++) {
        double t0 = now_s();
        for (long i = 0; i < batch; i++) read_all(sv[0], buf, size);
        double dt = now_s() - t0;
        write_all(sv[0], "k", 1);
        if (s >= 0) out[s] = (double)batch * (double)size / (1 << 20) / dt;
    }
    if (reap(pid)) return 1;
    report("bare_throughput", out, samples);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "rtt") == 0) return rtt(atoi(argv[2]), atol(argv[3]));
    if (argc == 5 && strcmp(argv[1], "throughput") == 0)
        return throughput(atoi(argv[2]), atol(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: connection_limits rtt SAMPLES BATCH | throughput SAMPLES BATCH SIZE\n");
    return 2;
}
