//! Queues across processes, beside Python and the bare limit.
//!
//! In one run, `ROUNDS` interleaved rounds of:
//! - one producer process putting `N` small integers into a
//!   `multiproc::Queue` and one consumer process getting them; Python's
//!   `multiprocessing.Queue` on the same (`benches/python/queue_bench.py`, with
//!   `N_PYTHON` items: its rate does not depend on the count); and a bare
//!   pipe carrying one 8-byte item per write (`benches/limits/queue_limits.c`);
//! - four producers and four consumers on one queue, `N` items in all;
//! - one producer putting `M` items of 1 MiB and one consumer, beside the
//!   same through Python's queue and through a bare pipe;
//! - `TRIPS` round trips of a small integer through two queues and a child
//!   that echoes it, beside the same through Python's queues and through
//!   two bare pipes: the latency a waiting side pays.
//!
//! Every process waits at a barrier first; the clock runs from the barrier
//! until the consumers have taken everything. Prints one table and the
//! ratios the project targets. A missed target is reported, never
//! asserted.
//!
//! Run with `cargo bench --bench queue`.

use std::process::Command;
use std::time::Instant;

use multiproc::{Barrier, Queue};
use serde_bytes::ByteBuf;

mod report;
use report::{Series, Target, compile_limits, print_errors, print_ratios, print_table, run_helper};

const ROUNDS: usize = 3;
/// Small items per run.
const N: u64 = 1_000_000;
const N_PYTHON: u64 = 200_000;
/// 1 MiB items per run.
const M: u64 = 500;
const M_PYTHON: u64 = 100;
const MIB: usize = 1 << 20;
/// Round trips per run.
const TRIPS: u64 = 20_000;
const TRIPS_PYTHON: u64 = 5_000;

const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/queue_bench.py");

#[multiproc::remote]
fn produce_ints(q: Queue<u64>, start: Barrier, n: u64) {
    start.wait().expect("the start barrier");
    for i in 0..n {
        q.put(i).expect("put");
    }
}

#[multiproc::remote]
fn consume_ints(q: Queue<u64>, start: Barrier, n: u64, done: Queue<()>) {
    start.wait().expect("the start barrier");
    for _ in 0..n {
        q.get().expect("get");
    }
    done.put(()).expect("done");
}

#[multiproc::remote]
fn produce_mib(q: Queue<ByteBuf>, start: Barrier, n: u64) {
    let item = ByteBuf::from(vec![7u8; MIB]);
    start.wait().expect("the start barrier");
    for _ in 0..n {
        q.put(item.clone()).expect("put");
    }
}

#[multiproc::remote]
fn consume_mib(q: Queue<ByteBuf>, start: Barrier, n: u64, done: Queue<()>) {
    start.wait().expect("the start barrier");
    for _ in 0..n {
        assert_eq!(q.get().expect("get").len(), MIB);
    }
    done.put(()).expect("done");
}

#[multiproc::remote]
fn echo(requests: Queue<u64>, replies: Queue<u64>, n: u64) {
    for _ in 0..n {
        replies.put(requests.get().expect("get")).expect("put");
    }
}

/// Seconds for `n` round trips through two queues and an echoing child.
fn run_trips(n: u64) -> Result<f64, String> {
    let e = |e: multiproc::Error| e.to_string();
    let requests = Queue::<u64>::new().map_err(e)?;
    let replies = Queue::<u64>::new().map_err(e)?;
    let child = multiproc::spawn(echo, (requests.clone(), replies.clone(), n + 1)).map_err(e)?;
    // One trip first, so that the child is up when the clock starts.
    requests.put(0).map_err(e)?;
    replies.get().map_err(e)?;
    let t0 = Instant::now();
    for i in 1..=n {
        requests.put(i).map_err(e)?;
        let back = replies.get().map_err(e)?;
        if back != i {
            return Err(format!("sent {i}, got {back} back"));
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    child.join().map_err(e)?;
    Ok(dt)
}

/// Seconds from the start barrier until `consumers` consumers have taken
/// `n` items from `producers` producers.
fn run_ints(producers: u64, consumers: u64, n: u64) -> Result<f64, String> {
    let e = |e: multiproc::Error| e.to_string();
    let q = Queue::<u64>::new().map_err(e)?;
    let done = Queue::<()>::new().map_err(e)?;
    let start = Barrier::new((producers + consumers + 1) as u32).map_err(e)?;
    let mut procs = Vec::new();
    for _ in 0..producers {
        procs.push(multiproc::spawn(produce_ints, (q.clone(), start.clone(), n / producers)).map_err(e)?);
    }
    let mut readers = Vec::new();
    for _ in 0..consumers {
        readers.push(
            multiproc::spawn(consume_ints, (q.clone(), start.clone(), n / consumers, done.clone()))
                .map_err(e)?,
        );
    }
    start.wait().map_err(e)?;
    let t0 = Instant::now();
    for _ in 0..consumers {
        done.get().map_err(e)?;
    }
    let dt = t0.elapsed().as_secs_f64();
    for p in procs.into_iter().chain(readers) {
        p.join().map_err(e)?;
    }
    Ok(dt)
}

/// Seconds from the start barrier until one consumer has taken `m` items
/// of 1 MiB.
fn run_mib(m: u64) -> Result<f64, String> {
    let e = |e: multiproc::Error| e.to_string();
    let q = Queue::<ByteBuf>::new().map_err(e)?;
    let done = Queue::<()>::new().map_err(e)?;
    let start = Barrier::new(3).map_err(e)?;
    let producer = multiproc::spawn(produce_mib, (q.clone(), start.clone(), m)).map_err(e)?;
    let consumer = multiproc::spawn(consume_mib, (q.clone(), start.clone(), m, done.clone())).map_err(e)?;
    start.wait().map_err(e)?;
    let t0 = Instant::now();
    done.get().map_err(e)?;
    let dt = t0.elapsed().as_secs_f64();
    producer.join().map_err(e)?;
    consumer.join().map_err(e)?;
    Ok(dt)
}

fn main() {
    let mut series = Series::default();
    let limits = compile_limits("queue_limits");
    for round in 0..ROUNDS {
        eprintln!("queue bench: round {} of {ROUNDS}", round + 1);
        let per_s = |n: u64| move |dt: f64| vec![n as f64 / dt];
        series.add(("multiproc", "items_per_s"), run_ints(1, 1, N).map(per_s(N)));
        series.add(("multiproc", "items_per_s_4x4"), run_ints(4, 4, N).map(per_s(N)));
        series.add(("multiproc", "mib_per_s"), run_mib(M).map(per_s(M)));
        series.add(("multiproc", "trip_us"), run_trips(TRIPS).map(|dt| vec![dt * 1e6 / TRIPS as f64]));
        let keys = [
            ("python", "items_per_s"),
            ("python", "items_per_s_4x4"),
            ("python", "mib_per_s"),
            ("python", "trip_us"),
        ];
        series.add_all(
            "python",
            &keys,
            run_helper(
                "python3",
                Command::new("python3")
                    .arg(PYTHON_SCRIPT)
                    .arg(N_PYTHON.to_string())
                    .arg(M_PYTHON.to_string())
                    .arg(TRIPS_PYTHON.to_string()),
            ),
        );
        let keys = [("limit", "pipe_items_per_s"), ("limit", "pipe_mib_per_s"), ("limit", "pipe_trip_us")];
        match &limits {
            Ok(exe) => series.add_all(
                "limit",
                &keys,
                run_helper(
                    "queue_limits",
                    Command::new(exe).arg(N.to_string()).arg(M.to_string()).arg(TRIPS.to_string()),
                ),
            ),
            Err(err) => series.fail(&keys, err),
        }
    }

    println!();
    println!(
        "queues across processes; {ROUNDS} interleaved rounds; figures are mean / median; ratios on medians"
    );
    println!();
    print_table(
        &series,
        &[("multiproc Queue", "multiproc"), ("python Queue", "python"), ("bare pipe", "limit")],
        &[
            ("1 -> 1, small ints, items/s", vec!["items_per_s", "items_per_s", "pipe_items_per_s"]),
            ("4 -> 4, small ints, items/s", vec!["items_per_s_4x4", "items_per_s_4x4", ""]),
            ("1 -> 1, 1 MiB items, MiB/s", vec!["mib_per_s", "mib_per_s", "pipe_mib_per_s"]),
            ("round trip, us", vec!["trip_us", "trip_us", "pipe_trip_us"]),
        ],
    );
    let (ours, python, pipe) = (|n| ("multiproc", n), |n| ("python", n), |n| ("limit", n));
    print_ratios(
        &series,
        &[
            (
                "small ints: multiproc / python".into(),
                ours("items_per_s"),
                python("items_per_s"),
                Target::AtLeast(20.0),
            ),
            (
                "small ints: multiproc / bare pipe".into(),
                ours("items_per_s"),
                pipe("pipe_items_per_s"),
                Target::None,
            ),
            (
                "small ints: 4x4 / 1x1 (scaling)".into(),
                ours("items_per_s_4x4"),
                ours("items_per_s"),
                Target::None,
            ),
            (
                "1 MiB items: multiproc / bare pipe".into(),
                ours("mib_per_s"),
                pipe("pipe_mib_per_s"),
                Target::AtLeast(0.7),
            ),
            ("1 MiB items: multiproc / python".into(), ours("mib_per_s"), python("mib_per_s"), Target::None),
            ("round trip: python / multiproc".into(), python("trip_us"), ours("trip_us"), Target::None),
            (
                "round trip: multiproc / bare pipes".into(),
                ours("trip_us"),
                pipe("pipe_trip_us"),
                Target::None,
            ),
        ],
    );
    print_errors(&series);
}
