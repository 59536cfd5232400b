"""Python's multiprocessing.Queue on the workloads of `cargo bench --bench
queue`.

Usage: python3 queue_bench.py N M TRIPS
(Not queue.py: that name would hide the standard library's `queue`.)
    items_per_s         one producer process puts N small ints, one
                        consumer process gets them
    items_per_s_4x4     four producers put N/4 each, four consumers get
                        N/4 each
    mib_per_s           one producer puts M items of 1 MiB (bytes), one
                        consumer gets them
    trip_us             microseconds per round trip of a small int through
                        two queues and a child that echoes it (TRIPS trips)

Every process waits at a barrier first; the clock runs from the barrier
to the end of the consumers' gets.
"""

import multiprocessing
import sys
import time


def produce(q, barrier, n, size):
    item = b"\x07" * size if size else None
    barrier.wait()
    for i in range(n):
        q.put(item if size else i)


def consume(q, barrier, n, done):
    barrier.wait()
    for _ in range(n):
        q.get()
    done.put(time.perf_counter())


def run(producers, consumers, n, size=0):
    q = multiprocessing.Queue()
    done = multiprocessing.Queue()
    barrier = multiprocessing.Barrier(producers + consumers + 1)
    procs = [multiprocessing.Process(target=produce, args=(q, barrier, n // producers, size))
             for _ in range(producers)]
    procs += [multiprocessing.Process(target=consume, args=(q, barrier, n // consumers, done))
              for _ in range(consumers)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    end = max(done.get() for _ in range(consumers))
    for p in procs:
        p.join()
    return end - t0


def echo(requests, replies, n):
    for _ in range(n):
        replies.put(requests.get())


def trips(n):
    requests = multiprocessing.Queue()
    replies = multiprocessing.Queue()
    child = multiprocessing.Process(target=echo, args=(requests, replies, n + 1))
    child.start()
    requests.put(0)
    replies.get()
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        requests.put(i)
        back = replies.get()
        assert back == i, (i, back)
    dt = time.perf_counter() - t0
    child.join()
    return dt


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    t = int(sys.argv[3]) if len(sys.argv) > 3 else 5_000
    print(f"SAMPLES items_per_s {n / run(1, 1, n):.3f}", flush=True)
    print(f"SAMPLES items_per_s_4x4 {n / run(4, 4, n):.3f}", flush=True)
    print(f"SAMPLES mib_per_s {m / run(1, 1, m, 1 << 20):.3f}", flush=True)
    print(f"SAMPLES trip_us {trips(t) * 1e6 / t:.3f}", flush=True)


if __name__ == "__main__":
    main()
