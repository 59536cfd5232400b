//! Shared values under their lock, beside Python and the bare limit.
//!
//! In one run, `ROUNDS` interleaved rounds of: two processes each adding 1
//! to a shared 64-bit integer `N` times under its lock (a `multiproc::Value`
//! with its robust lock; Python's `Value('q')` with `get_lock()`,
//! `benches/python/shm.py`; and a bare process-shared pthread mutex,
//! `benches/limits/shm_limits.c`), and the cost of one uncontended lock +
//! unlock of each; and the wake-up latency of an `Event` across processes
//! (half a ping-pong of two events). Prints one table and the ratios the
//! project targets. A missed target is reported, never asserted.
//!
//! The two adding processes start together, in all three: the child says
//! it is ready through a flag in shared memory and waits for a start flag;
//! the clock runs from the start flag until both have finished, the child
//! saying so by a third flag. (Timing from before the child's start, as
//! the first version did, let the parent add alone, uncontended, for as
//! long as a start takes, and a bare `fork` starts sooner than a
//! `multiproc::spawn`.)
//!
//! Run with `cargo bench --bench shm`.

use std::process::Command;
use std::time::Instant;

use multiproc::{Event, RawArray, Value};

mod report;
use report::{Series, Target, compile_limits, print_errors, print_ratios, print_table, run_helper};

const ROUNDS: usize = 5;
/// Increments per process.
const N: u32 = 100_000;
/// Uncontended lock + unlock pairs measured.
const UNCONTENDED: u32 = 1_000_000;

const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/shm.py");

/// The flags the two adding processes start and end by.
const READY: usize = 0;
const GO: usize = 1;
const DONE: usize = 2;

fn add(v: &Value<i64>, n: u32) {
    for _ in 0..n {
        *v.lock() += 1;
    }
}

/// The child's side: ready, wait for the start, add, done.
#[multiproc::remote]
fn add_together(v: Value<i64>, n: u32, flags: RawArray<u32>) {
    flags.set(READY, 1);
    while flags.get(GO) == 0 {
        std::hint::spin_loop();
    }
    add(&v, n);
    flags.set(DONE, 1);
}

/// Ping-pongs of two events per latency sample.
const PINGS: u32 = 2_000;

/// Answers each set of `ping` by setting `pong`.
#[multiproc::remote]
fn pong(ping: Event, pong: Event, n: u32) {
    for _ in 0..n {
        ping.wait();
        ping.clear();
        pong.set();
    }
}

/// Microseconds from `set` in one process to the return of `wait` in
/// another: half a round trip.
fn event_latency() -> Result<f64, String> {
    let (a, b) = (Event::new().map_err(|e| e.to_string())?, Event::new().map_err(|e| e.to_string())?);
    let child = multiproc::spawn(pong, (a.clone(), b.clone(), PINGS)).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    for _ in 0..PINGS {
        a.set();
        b.wait();
        b.clear();
    }
    let dt = t0.elapsed().as_secs_f64();
    child.join().map_err(|e| e.to_string())?;
    Ok(dt / f64::from(PINGS) / 2.0 * 1e6)
}

/// One round: increments per second of two processes, and ns per
/// uncontended lock + unlock.
fn measure() -> Result<(f64, f64), String> {
    let v = Value::new(0i64).map_err(|e| e.to_string())?;
    let flags = RawArray::<u32>::new(3).map_err(|e| e.to_string())?;
    let child = multiproc::spawn(add_together, (v.clone(), N, flags.clone())).map_err(|e| e.to_string())?;
    while flags.get(READY) == 0 {
        std::hint::spin_loop();
    }
    let t0 = Instant::now();
    flags.set(GO, 1);
    add(&v, N);
    while flags.get(DONE) == 0 {
        std::hint::spin_loop();
    }
    let dt = t0.elapsed().as_secs_f64();
    child.join().map_err(|e| e.to_string())?;
    if v.get() != 2 * i64::from(N) {
        return Err(format!("lost increments: {}", v.get()));
    }
    let t0 = Instant::now();
    for _ in 0..UNCONTENDED {
        drop(std::hint::black_box(v.lock()));
    }
    let ns = t0.elapsed().as_secs_f64() / f64::from(UNCONTENDED) * 1e9;
    Ok((2.0 * f64::from(N) / dt, ns))
}

fn main() {
    let mut series = Series::default();
    let limits = compile_limits("shm_limits");
    let n = N.to_string();
    for round in 0..ROUNDS {
        eprintln!("shm bench: round {} of {ROUNDS}", round + 1);
        match measure() {
            Ok((ops, ns)) => {
                series.add(("multiproc", "ops_per_s"), Ok(vec![ops]));
                series.add(("multiproc", "uncontended_ns"), Ok(vec![ns]));
            }
            Err(e) => series.fail(&[("multiproc", "ops_per_s"), ("multiproc", "uncontended_ns")], &e),
        }
        series.add(("multiproc", "event_us"), event_latency().map(|us| vec![us]));
        let keys = [("python", "ops_per_s"), ("python", "uncontended_ns"), ("python", "event_us")];
        series.add_all(
            "python",
            &keys,
            run_helper("python3", Command::new("python3").arg(PYTHON_SCRIPT).arg(&n)),
        );
        let keys = [("limit", "bare_ops_per_s"), ("limit", "bare_uncontended_ns")];
        match &limits {
            Ok(exe) => series.add_all("limit", &keys, run_helper("shm_limits", Command::new(exe).arg(&n))),
            Err(e) => series.fail(&keys, e),
        }
    }

    println!();
    println!(
        "two processes adding 1 to a shared i64 {N} times each under its lock; {ROUNDS} interleaved rounds"
    );
    println!("figures are mean / median; ratios on medians");
    println!();
    print_table(
        &series,
        &[("multiproc Value", "multiproc"), ("python Value('q')", "python"), ("bare pthread mutex", "limit")],
        &[
            ("increments/s, both processes", vec!["ops_per_s", "ops_per_s", "bare_ops_per_s"]),
            ("event wake-up across processes, us", vec!["event_us", "event_us", ""]),
            ("uncontended lock+unlock, ns", vec!["uncontended_ns", "uncontended_ns", "bare_uncontended_ns"]),
        ],
    );
    let (ours, python, bare) = (|n| ("multiproc", n), |n| ("python", n), |n| ("limit", n));
    print_ratios(
        &series,
        &[
            (
                "bare ops/s / multiproc ops/s".into(),
                bare("bare_ops_per_s"),
                ours("ops_per_s"),
                Target::AtMost(2.0),
            ),
            (
                "multiproc ops/s / python ops/s".into(),
                ours("ops_per_s"),
                python("ops_per_s"),
                Target::AtLeast(10.0),
            ),
            (
                "uncontended: python ns / multiproc ns".into(),
                python("uncontended_ns"),
                ours("uncontended_ns"),
                Target::None,
            ),
            (
                "uncontended: multiproc ns / bare ns".into(),
                ours("uncontended_ns"),
                bare("bare_uncontended_ns"),
                Target::None,
            ),
        ],
    );
    print_errors(&series);
}
