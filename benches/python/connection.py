"""Messages between two processes over multiprocessing.Pipe(): the Python
side of `cargo bench --bench connection`.

Usage: python3 connection.py rtt SAMPLES BATCH
    ping-pong of a 1-byte message (send_bytes/recv_bytes) with a child;
    each sample is the mean microseconds per round trip over BATCH.
    Prints: SAMPLES python_rtt <us> <us> ...
Usage: python3 connection.py throughput SAMPLES BATCH SIZE
    the child sends BATCH messages of SIZE bytes per sample, the parent
    receives them with recv_bytes and acks; each sample is MiB/s.
    Prints: SAMPLES python_throughput <MiB/s> ...
A warm-up of one batch precedes the samples.
"""

import multiprocessing
import sys
import time


def echo(conn, total):
    for _ in range(total):
        conn.send_bytes(conn.recv_bytes())


def source(conn, samples, batch, size):
    message = b"\x07" * size
    for _ in range(samples + 1):
        for _ in range(batch):
            conn.send_bytes(message)
        conn.recv_bytes()


def rtt(samples, batch):
    ours, theirs = multiprocessing.Pipe()
    p = multiprocessing.Process(target=echo, args=(theirs, (samples + 1) * batch))
    p.start()
    theirs.close()
    out = []
    for s in range(-1, samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            ours.send_bytes(b"x")
            ours.recv_bytes()
        if s >= 0:
            out.append((time.perf_counter() - t0) / batch * 1e6)
    p.join()
    return out


def throughput(samples, batch, size):
    ours, theirs = multiprocessing.Pipe()
    p = multiprocessing.Process(target=source, args=(theirs, samples, batch, size))
    p.start()
    theirs.close()
    out = []
    for s in range(-1, samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            if len(ours.recv_bytes()) != size:
                raise RuntimeError("short message")
        dt = time.perf_counter() - t0
        ours.send_bytes(b"k")
        if s >= 0:
            out.append(batch * size / (1 << 20) / dt)
    p.join()
    return out


def main():
    mode = sys.argv[1]
    if mode == "rtt":
        samples = rtt(int(sys.argv[2]), int(sys.argv[3]))
    else:
        samples = throughput(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    print(f"SAMPLES python_{mode}", *(f"{s:.6f}" for s in samples), flush=True)


if __name__ == "__main__":
    main()
