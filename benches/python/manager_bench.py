"""Python's multiprocessing.Manager on the workloads of `cargo bench --bench
manager`.

Usage:
    python3 manager_bench.py ops SAMPLES BATCH
        a child process does SAMPLES + 1 batches of BATCH insert+get pairs
        on a Manager().dict(); prints `SAMPLES python_op_us <us per
        operation> ...`, one per batch after the first (a warm-up)
    python3 manager_bench.py clients N OPS
        N child processes at once each do OPS/2 insert+get pairs on one
        dict, from a barrier on; prints `SAMPLES python_clients_N <ops/s>`
"""

import multiprocessing
import sys
import time


def ops(d, samples, batch, out):
    results = []
    for s in range(samples + 1):
        t0 = time.perf_counter()
        for i in range(batch):
            d[i] = i
            d.get(i)
        dt = time.perf_counter() - t0
        if s > 0:
            results.append(dt / (2 * batch) * 1e6)
    out.put(results)


def client(d, me, pairs, barrier, out):
    barrier.wait()
    t0 = time.perf_counter()
    for i in range(pairs):
        d[(me, i)] = i
        d.get((me, i))
    out.put((t0, time.perf_counter()))


def main():
    mode = sys.argv[1]
    with multiprocessing.Manager() as manager:
        d = manager.dict()
        out = multiprocessing.Queue()
        if mode == "ops":
            samples, batch = int(sys.argv[2]), int(sys.argv[3])
            p = multiprocessing.Process(target=ops, args=(d, samples, batch, out))
            p.start()
            results = out.get()
            p.join()
            print("SAMPLES python_op_us " + " ".join(f"{r:.3f}" for r in results), flush=True)
        elif mode == "clients":
            n, total = int(sys.argv[2]), int(sys.argv[3])
            pairs = total // n // 2
            barrier = multiprocessing.Barrier(n)
            procs = [multiprocessing.Process(target=client, args=(d, me, pairs, barrier, out))
                     for me in range(n)]
            for p in procs:
                p.start()
            spans = [out.get() for _ in procs]
            for p in procs:
                p.join()
            dt = max(e for _, e in spans) - min(s for s, _ in spans)
            print(f"SAMPLES python_clients_{n} {n * pairs * 2 / dt:.3f}", flush=True)
        else:
            sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
