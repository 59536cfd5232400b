/*
 * The physical limits of starting and joining a process, for the spawn
 * bench: (a) bare fork() + _exit(0) in the child + waitpid(), and
 * (b) fork() + execve() of a given program + waitpid(), where the program
 * exits at once (the bench binary does when MULTIPROC_BENCH_EXIT_AT_ONCE=1).
 *
 * Usage: spawn_limits N EXE
 * After a few unmeasured warm-ups, measures each N times and prints one line
 * per measurement, with every sample in milliseconds:
 *   SAMPLES <name> <ms> <ms> ...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 5

extern char **environ;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void report(const char *name, const double *samples, int n) {
    printf("SAMPLES %s", name);
    for (int i = 0; i < n; i++) printf(" %.6f", samples[i]);
    printf("\n");
    fflush(stdout);
}

static int reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn_limits: child %d ended with status 0x%x\n", (int)pid, status);
        return -1;
    }
    return 0;
}

/* fork(); the child calls _exit(0); the parent waits. */
static int fork_once(void) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) _exit(0);
    return reap(pid);
}

/* fork(); the child executes `path`; the parent waits. */
static int fork_exec_once(const char *path, char *const argv[], char *const envp[]) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        execve(path, argv, envp);
        _exit(127);
    }
    return reap(pid);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N EXE\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    const char *exe = argv[2];
    if (n <= 0) {
        fprintf(stderr, "spawn_limits: N must be positive\n");
        return 2;
    }
    double *samples = malloc((size_t)n * sizeof *samples);
    if (!samples) return 1;

    /* The environment of the parent, plus the variable that makes the bench
     * binary exit at once. */
    size_t nenv = 0;
    while (environ[nenv]) nenv++;
    char **envp = malloc((nenv + 2) * sizeof *envp);
    if (!envp) return 1;
    memcpy(envp, environ, nenv * sizeof *envp);
    envp[nenv] = "MULTIPROC_BENCH_EXIT_AT_ONCE=1";
    envp[nenv + 1] = NULL;
    char *child_argv[] = {(char *)exe, NULL};

    for (int i = 0; i < WARMUP; i++)
        if (fork_once() < 0) return 1;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (fork_once() < 0) return 1;
        samples[i] = now_ms() - t0;
    }
    report("fork_waitpid", samples, n);

    for (int i = 0; i < WARMUP; i++)
        if (fork_exec_once(exe, child_argv, envp) < 0) return 1;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (fork_exec_once(exe, child_argv, envp) < 0) return 1;
        samples[i] = now_ms() - t0;
    }
    report("fork_execve_waitpid", samples, n);

    free(envp);
    free(samples);
    return 0;
}
