"""Python's multiprocessing.Value on the workloads of `cargo bench --bench
shm`.

Usage: python3 shm.py N
    ops_per_s           two processes each add 1 to Value('q') N times,
                        each under `with v.get_lock()`: increments per
                        second, both together
    uncontended_ns      one uncontended acquire + release of that lock
"""

import multiprocessing
import sys
import time


def add(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    v = multiprocessing.Value("q", 0)
    t0 = time.perf_counter()
    p = multiprocessing.Process(target=add, args=(v, n))
    p.start()
    add(v, n)
    p.join()
    dt = time.perf_counter() - t0
    if v.value != 2 * n:
        raise RuntimeError(f"lost increments: {v.value}")
    print(f"SAMPLES ops_per_s {2 * n / dt:.3f}")
    lock = v.get_lock()
    m = 200_000
    t0 = time.perf_counter()
    for _ in range(m):
        lock.acquire()
        lock.release()
    print(f"SAMPLES uncontended_ns {(time.perf_counter() - t0) / m * 1e9:.3f}", flush=True)


if __name__ == "__main__":
    main()
