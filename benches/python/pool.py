"""Python's multiprocessing.Pool on the workloads of `cargo bench --bench
pool`; prints one `SAMPLES <name> <value> ...` line per workload.

Usage: python3 pool.py ROUNDS
    map_tasks_per_s     Pool(2).map(square, range(1_000_000)), default chunks
    imap_tasks_per_s    Pool(2).imap(square, range(20_000)), chunksize=1
    cpu_speedup         1,000 tasks of about 2 ms of CPU each (a loop,
                        calibrated here): a sequential loop's time over
                        Pool(2).map's
    spin_ms             what one of those tasks took in the sequential loop
    start_ms            Pool(2) started, one apply, pool terminated
"""

import multiprocessing
import sys
import time


# Measurements of map and imap per round, back to back, after one
# unmeasured run of each.
REPEAT = 3


def square(x):
    return x * x


def spin(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main():
    rounds = int(sys.argv[1])
    probe = 20_000
    spin_iters = int(probe * 2e-3 / min(timed(lambda: spin(probe)) for _ in range(5)))
    out = {"map_tasks_per_s": [], "imap_tasks_per_s": [], "cpu_speedup": [], "start_ms": [],
           "spin_ms": []}
    with multiprocessing.Pool(2) as pool:
        pool.map(square, range(1000))  # warm up
        for _ in range(rounds):
            n = 1_000_000
            pool.map(square, range(n))  # warm-up, unmeasured
            for _ in range(REPEAT):
                dt = timed(lambda: pool.map(square, range(n)))
                out["map_tasks_per_s"].append(n / dt)
            n = 20_000
            list(pool.imap(square, range(n), chunksize=1))  # warm-up, unmeasured
            for _ in range(REPEAT):
                dt = timed(lambda: list(pool.imap(square, range(n), chunksize=1)))
                out["imap_tasks_per_s"].append(n / dt)
            tasks = [spin_iters] * 1000
            seq = timed(lambda: [spin(t) for t in tasks])
            par = timed(lambda: pool.map(spin, tasks))
            out["cpu_speedup"].append(seq / par)
            out["spin_ms"].append(seq / len(tasks) * 1e3)
    def start():
        with multiprocessing.Pool(2) as p:
            p.apply(square, (3,))

    for _ in range(rounds):
        start()  # warm-up, unmeasured
        for _ in range(REPEAT):
            out["start_ms"].append(timed(start) * 1e3)
    for name, samples in out.items():
        print(f"SAMPLES {name}", *(f"{s:.6f}" for s in samples), flush=True)


if __name__ == "__main__":
    main()
