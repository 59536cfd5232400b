/*
 * The physical limit of the shared-value bench: two processes each add 1
 * to a 64-bit integer in shared memory N times, under a process-shared
 * pthread mutex (not robust, no error checking: the cheapest lock); and
 * the cost of an uncontended lock + unlock of that mutex.
 *
 * Usage: shm_limits N
 * Prints:
 *   SAMPLES bare_ops_per_s <increments per second, both processes together>
 *   SAMPLES bare_uncontended_ns <ns per lock + unlock>
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t lock;
    int64_t value;
    /* The child is ready; the two may start; the child is done. */
    volatile int ready, go, done;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add(struct shared *s, long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&s->lock);
        s->value += 1;
        pthread_mutex_unlock(&s->lock);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) { perror("mmap"); return 1; }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->lock, &attr);

    /* Both start together, as in the other two: the clock runs from the
     * start flag until both are done. */
    pid_t pid = fork();
    if (pid == 0) {
        s->ready = 1;
        while (!s->go) continue;
        add(s, n);
        __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
        _exit(0);
    }
    while (!s->ready) continue;
    double t0 = now_s();
    __atomic_store_n(&s->go, 1, __ATOMIC_SEQ_CST);
    add(s, n);
    while (!__atomic_load_n(&s->done, __ATOMIC_SEQ_CST)) continue;
    double dt = now_s() - t0;
    int status;
    waitpid(pid, &status, 0);
    if (s->value != 2 * n) { fprintf(stderr, "lost increments: %ld\n", (long)s->value); return 1; }
    printf("SAMPLES bare_ops_per_s %.3f\n", 2.0 * n / dt);

    long m = 1000000;
    t0 = now_s();
    for (long i = 0; i < m; i++) { pthread_mutex_lock(&s->lock); pthread_mutex_unlock(&s->lock); }
    printf("SAMPLES bare_uncontended_ns %.3f\n", (now_s() - t0) / m * 1e9);
    return 0;
}
