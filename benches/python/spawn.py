"""Start+join of a process running a trivial function, with each of Python's
start methods: the Python side of `cargo bench --bench spawn`.

Usage: python3 spawn.py [N] [WARMUP]

After WARMUP unmeasured runs (which also start the fork server), measures
each start method N times and prints one line per method, with every sample
in milliseconds:
    SAMPLES <method> <ms> <ms> ...
"""

import multiprocessing
import sys
import time

METHODS = ("fork", "spawn", "forkserver")


def noop():
    return 1


def measure(method, n, warmup):
    ctx = multiprocessing.get_context(method)
    for _ in range(warmup):  # also starts the fork server
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if p.exitcode != 0:
            raise RuntimeError(f"{method}: child exited with {p.exitcode}")
    return samples


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for method in METHODS:
        samples = measure(method, n, warmup)
        print(f"SAMPLES {method}", *(f"{s:.6f}" for s in samples), flush=True)


if __name__ == "__main__":
    main()
