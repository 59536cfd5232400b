/*
 * The physical limits of the queue bench, through a bare pipe:
 *   - one producer process writes N 8-byte integers, one write per item,
 *     and one consumer process reads them, one read per item;
 *   - one producer writes M items of 1 MiB, one consumer reads them;
 *   - TRIPS round trips of an 8-byte integer through two pipes and a child
 *     that echoes it.
 * Both start together (a ready pipe and a start pipe), and the clock runs
 * from the start until the consumer has read everything.
 *
 * Usage: queue_limits N M TRIPS
 * Prints:
 *   SAMPLES pipe_items_per_s <items per second>
 *   SAMPLES pipe_mib_per_s <MiB per second>
 *   SAMPLES pipe_trip_us <microseconds per round trip>
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { perror("write"); _exit(1); }
        p += w; n -= (size_t)w;
    }
}

static void read_all(int fd, char *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) { perror("read"); exit(1); }
        p += r; n -= (size_t)r;
    }
}

/* Runs the producer in a child; returns seconds from start to the end of
 * the consumer's reads. */
static double run(long items, size_t size) {
    int data[2], start[2];
    if (pipe(data) || pipe(start)) { perror("pipe"); exit(1); }
    char *buf = malloc(size);
    memset(buf, 7, size);
    pid_t pid = fork();
    if (pid == 0) {
        close(data[0]);
        char go;
        read_all(start[0], &go, 1);
        for (long i = 0; i < items; i++) {
            memcpy(buf, &i, sizeof i);
            write_all(data[1], buf, size);
        }
        _exit(0);
    }
    close(data[1]);
    double t0 = now_s();
    write_all(start[1], "g", 1);
    for (long i = 0; i < items; i++) {
        read_all(data[0], buf, size);
        long got;
        memcpy(&got, buf, sizeof got);
        if (got != i) { fprintf(stderr, "item %ld came as %ld\n", i, got); exit(1); }
    }
    double dt = now_s() - t0;
    int status;
    waitpid(pid, &status, 0);
    close(data[0]); close(start[0]); close(start[1]);
    free(buf);
    return dt;
}

/* Seconds for `trips` round trips through two pipes and an echoing child. */
static double run_trips(long trips) {
    int requests[2], replies[2];
    if (pipe(requests) || pipe(replies)) { perror("pipe"); exit(1); }
    pid_t pid = fork();
    if (pid == 0) {
        close(requests[1]); close(replies[0]);
        long x;
        for (long i = 0; i <= trips; i++) {
            read_all(requests[0], (char *)&x, sizeof x);
            write_all(replies[1], (const char *)&x, sizeof x);
        }
        _exit(0);
    }
    close(requests[0]); close(replies[1]);
    long x = 0, back;
    write_all(requests[1], (const char *)&x, sizeof x);
    read_all(replies[0], (char *)&back, sizeof back);
    double t0 = now_s();
    for (long i = 1; i <= trips; i++) {
        write_all(requests[1], (const char *)&i, sizeof i);
        read_all(replies[0], (char *)&back, sizeof back);
        if (back != i) { fprintf(stderr, "sent %ld, got %ld back\n", i, back); exit(1); }
    }
    double dt = now_s() - t0;
    int status;
    waitpid(pid, &status, 0);
    close(requests[1]); close(replies[0]);
    return dt;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long m = argc > 2 ? atol(argv[2]) : 200;
    printf("SAMPLES pipe_items_per_s %.3f\n", n / run(n, 8));
    long t = argc > 3 ? atol(argv[3]) : 20000;
    printf("SAMPLES pipe_mib_per_s %.3f\n", m / run(m, 1 << 20));
    printf("SAMPLES pipe_trip_us %.3f\n", run_trips(t) * 1e6 / t);
    return 0;
}
