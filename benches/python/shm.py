"""Python's multiprocessing.Value on the workloads of `cargo bench --bench
shm`.

Usage: python3 shm.py N
    ops_per_s           two processes each add 1 to Value('q') N times,
                        each under `with v.get_lock()`: increments per
                        second, both together
    uncontended_ns      one uncontended acquire + release of that lock
    event_us            from Event.set() in one process to the return of
                        wait() in another: half a ping-pong of two events
"""

import multiprocessing
import sys
import time


def add(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


READY, GO, DONE = 0, 1, 2


def add_together(v, n, flags):
    """The child's side: ready, wait for the start, add, done."""
    flags[READY] = 1
    while not flags[GO]:
        pass
    add(v, n)
    flags[DONE] = 1


PINGS = 2_000


def pong(ping, pong_, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong_.set()


def event_latency():
    a, b = multiprocessing.Event(), multiprocessing.Event()
    p = multiprocessing.Process(target=pong, args=(a, b, PINGS))
    p.start()
    t0 = time.perf_counter()
    for _ in range(PINGS):
        a.set()
        b.wait()
        b.clear()
    dt = time.perf_counter() - t0
    p.join()
    return dt / PINGS / 2 * 1e6


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    v = multiprocessing.Value("q", 0)
    # Both start together: the clock runs from the start flag until both
    # are done.
    flags = multiprocessing.RawArray("i", 3)
    p = multiprocessing.Process(target=add_together, args=(v, n, flags))
    p.start()
    while not flags[READY]:
        pass
    t0 = time.perf_counter()
    flags[GO] = 1
    add(v, n)
    while not flags[DONE]:
        pass
    dt = time.perf_counter() - t0
    p.join()
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
    print(f"SAMPLES event_us {event_latency():.3f}", flush=True)


if __name__ == "__main__":
    main()
