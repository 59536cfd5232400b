//! Messages between two processes, beside Python and the bare socketpair.
//!
//! In one run, on one machine, and for two placements — unpinned, and both
//! processes pinned to one core with `taskset -c 0` (on a VM a wake-up
//! across cores costs tens of microseconds, on one core it is a context
//! switch):
//!
//! - round trip of a 1-byte message between a parent and a child
//!   (`send_bytes` / `recv_bytes` on a `multiproc::pipe`);
//! - one-way throughput of 1 MiB messages, received with `recv_bytes` (a
//!   new `Vec` per message, as Python's `recv_bytes` makes a new `bytes`)
//!   and with `recv_bytes_into` (one reused buffer, as the bare limit);
//!
//! through multiproc (this binary, re-run as a worker under `taskset` when
//! pinned, so that the fork server and every child share the placement),
//! through Python's `multiprocessing.Pipe` (`benches/python/connection.py`)
//! and through a bare socketpair with `read`/`write` and no framing
//! (`benches/limits/connection_limits.c`, compiled with `cc -O2` at run
//! time). Prints one table and the ratios the project targets. A missed
//! target is reported, never asserted.
//!
//! The measurements are interleaved: `ROUNDS` rounds, each running every
//! series once, so that what is compared was measured within moments.
//!
//! Run with `cargo bench --bench connection`.

use std::process::Command;
use std::time::Instant;

use multiproc::Connection;

mod report;
use report::{
    PLACEMENTS, Series, Target, compile_limits, print_errors, print_placement_table, print_placement_targets,
    print_samples,
};

/// Rounds the measurements are spread over.
const ROUNDS: usize = 3;
/// Samples per series per round.
const SAMPLES: usize = 10;
/// Round trips per latency sample.
const RTT_BATCH: usize = 500;
/// Messages per throughput sample.
const TP_BATCH: usize = 64;
/// The size of a throughput message.
const TP_SIZE: usize = 1 << 20;

/// Set in the environment when this binary runs as a measuring worker; the
/// value names the workload.
const WORKER: &str = "MULTIPROC_BENCH_CONNECTION_WORKER";

const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/connection.py");

#[multiproc::remote]
fn echo(conn: Connection<()>, total: usize) -> usize {
    for i in 0..total {
        let message = match conn.recv_bytes() {
            Ok(m) => m,
            Err(e) => panic!("echo: message {i}: {e}"),
        };
        conn.send_bytes(&message).expect("echo: send");
    }
    total
}

#[multiproc::remote]
fn source(conn: Connection<()>, batches: usize, batch: usize, size: usize) -> usize {
    let message = vec![7u8; size];
    for _ in 0..batches {
        for _ in 0..batch {
            conn.send_bytes(&message).expect("source: send");
        }
        conn.recv_bytes().expect("source: ack");
    }
    batches * batch
}

/// Mean microseconds per 1-byte round trip, per sample.
fn measure_rtt() -> Result<Vec<f64>, String> {
    let (ours, theirs) = multiproc::pipe::<()>().map_err(|e| e.to_string())?;
    let child = multiproc::spawn(echo, (theirs, (SAMPLES + 1) * RTT_BATCH)).map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(SAMPLES);
    for s in 0..=SAMPLES {
        let t0 = Instant::now();
        for _ in 0..RTT_BATCH {
            ours.send_bytes(b"x").map_err(|e| e.to_string())?;
            ours.recv_bytes().map_err(|e| e.to_string())?;
        }
        if s > 0 {
            samples.push(t0.elapsed().as_secs_f64() / RTT_BATCH as f64 * 1e6);
        }
    }
    child.join().map_err(|e| e.to_string())?;
    Ok(samples)
}

/// MiB/s of 1 MiB messages, per sample; `into` receives into one buffer.
fn measure_throughput(into: bool) -> Result<Vec<f64>, String> {
    let (ours, theirs) = multiproc::pipe::<()>().map_err(|e| e.to_string())?;
    let child =
        multiproc::spawn(source, (theirs, SAMPLES + 1, TP_BATCH, TP_SIZE)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; TP_SIZE];
    let mut samples = Vec::with_capacity(SAMPLES);
    for s in 0..=SAMPLES {
        let t0 = Instant::now();
        for _ in 0..TP_BATCH {
            let len = if into {
                ours.recv_bytes_into(&mut buf).map_err(|e| e.to_string())?
            } else {
                ours.recv_bytes().map_err(|e| e.to_string())?.len()
            };
            if len != TP_SIZE {
                return Err(format!("a message of {len} bytes arrived, not {TP_SIZE}"));
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        ours.send_bytes(b"k").map_err(|e| e.to_string())?;
        if s > 0 {
            samples.push((TP_BATCH * TP_SIZE) as f64 / f64::from(1 << 20) / dt);
        }
    }
    child.join().map_err(|e| e.to_string())?;
    Ok(samples)
}

/// The workloads this binary measures as a worker, by the name the worker
/// is given and the name of their series.
const WORKLOADS: [(&str, &str); 3] = [
    ("rtt", "multiproc_rtt"),
    ("throughput", "multiproc_throughput"),
    ("throughput_into", "multiproc_throughput_into"),
];

/// The worker: measures one workload and prints its samples.
fn worker(workload: &str) {
    let samples = match workload {
        "rtt" => measure_rtt(),
        "throughput" => measure_throughput(false),
        "throughput_into" => measure_throughput(true),
        other => {
            eprintln!("unknown workload {other:?}");
            std::process::exit(2);
        }
    };
    print_samples(workload, &WORKLOADS, samples);
}

fn main() {
    if let Some(workload) = std::env::var_os(WORKER) {
        worker(&workload.to_string_lossy());
        return;
    }

    let mut series = Series::default();
    let limits = compile_limits("connection_limits");
    let me = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"));
    let python = std::path::Path::new("python3");
    let (samples, rtt_batch, tp_batch, tp_size) =
        (SAMPLES.to_string(), RTT_BATCH.to_string(), TP_BATCH.to_string(), TP_SIZE.to_string());

    for round in 0..ROUNDS {
        for placement in PLACEMENTS {
            let p = placement.name();
            eprintln!("connection bench: round {} of {ROUNDS}, {p}", round + 1);
            series.run_workers(placement, &me, WORKER, &WORKLOADS);
            let mut run = |name: &str, cmd: Result<Command, String>| series.run_in(placement, name, cmd);
            let (s, rb, tb, ts) = (samples.as_str(), rtt_batch.as_str(), tp_batch.as_str(), tp_size.as_str());
            run("python_rtt", Ok(placement.command(python, &[PYTHON_SCRIPT, "rtt", s, rb])));
            run(
                "python_throughput",
                Ok(placement.command(python, &[PYTHON_SCRIPT, "throughput", s, tb, ts])),
            );
            run("bare_rtt", limits.clone().map(|exe| placement.command(&exe, &["rtt", s, rb])));
            run(
                "bare_throughput",
                limits.clone().map(|exe| placement.command(&exe, &["throughput", s, tb, ts])),
            );
        }
    }

    print_report(&series);
}

fn print_report(series: &Series) {
    println!();
    println!(
        "messages between two processes: {} samples per series in {ROUNDS} interleaved rounds; \
         a latency sample is the mean of {RTT_BATCH} round trips, a throughput sample {TP_BATCH} messages \
         of {} KiB",
        SAMPLES * ROUNDS,
        TP_SIZE >> 10
    );
    println!("figures are mean / median; ratios are on medians");
    println!();
    print_placement_table(
        series,
        &[
            ("1-byte round trip, us: multiproc", "multiproc_rtt"),
            ("1-byte round trip, us: python Pipe", "python_rtt"),
            ("1-byte round trip, us: bare socketpair", "bare_rtt"),
            ("1 MiB, MiB/s: multiproc recv_bytes", "multiproc_throughput"),
            ("1 MiB, MiB/s: multiproc recv_bytes_into", "multiproc_throughput_into"),
            ("1 MiB, MiB/s: python Pipe recv_bytes", "python_throughput"),
            ("1 MiB, MiB/s: bare socketpair", "bare_throughput"),
        ],
    );
    print_placement_targets(
        series,
        &[
            ("multiproc rtt / bare rtt", "multiproc_rtt", "bare_rtt", Target::AtMost(1.3)),
            ("python rtt / multiproc rtt", "python_rtt", "multiproc_rtt", Target::None),
            (
                "multiproc recv_bytes MiB/s / bare",
                "multiproc_throughput",
                "bare_throughput",
                Target::AtLeast(0.8),
            ),
            (
                "multiproc recv_bytes_into MiB/s / bare",
                "multiproc_throughput_into",
                "bare_throughput",
                Target::AtLeast(0.8),
            ),
            ("python MiB/s / bare", "python_throughput", "bare_throughput", Target::None),
        ],
    );
    print_errors(series);
}
