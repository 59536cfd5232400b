//! Manager proxies, beside Python's `Manager` and the bare round trip.
//!
//! In one run, and for two placements (unpinned, and every process pinned
//! to one core with `taskset -c 0`):
//!
//! - a child process doing insert+get pairs on a `DictProxy`: the latency
//!   of one operation, each a round trip to the manager's server; beside
//!   Python's `Manager().dict()` (`benches/python/manager_bench.py`) and a
//!   1-byte round trip on a bare socketpair (`benches/limits/
//!   connection_limits.c`), the least a round trip can cost;
//! - one client and eight clients at once on one dict: operations per
//!   second, and how they scale.
//!
//! multiproc runs in this binary, re-run as a worker under `taskset` when
//! pinned so that the fork server, the manager and its clients share the
//! placement. `ROUNDS` interleaved rounds; prints one table and the ratios
//! the project targets. A missed target is reported, never asserted.
//!
//! Run with `cargo bench --bench manager`.

use std::process::Command;
use std::time::Instant;

use multiproc::{Barrier, DictProxy, Manager};

mod report;
use report::{
    PLACEMENTS, Series, Target, compile_limits, print_errors, print_placement_table, print_placement_targets,
    print_samples,
};

const ROUNDS: usize = 3;
/// Latency samples per series per round, after one warm-up batch.
const SAMPLES: usize = 10;
/// Insert+get pairs per latency sample: 10,000 pairs in all.
const BATCH: usize = 1_000;
/// Operations per client run, shared among the clients.
const CLIENT_OPS: usize = 40_000;
/// Round trips per bare latency sample.
const BARE_BATCH: usize = 2_000;

const WORKER: &str = "MULTIPROC_BENCH_MANAGER_WORKER";
const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/manager_bench.py");

#[multiproc::remote]
fn dict_ops(d: DictProxy<u64, u64>, samples: usize, batch: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(samples);
    for s in 0..=samples {
        let t0 = Instant::now();
        for i in 0..batch as u64 {
            d.insert(i, i).expect("insert");
            d.get(&i).expect("get");
        }
        if s > 0 {
            out.push(t0.elapsed().as_secs_f64() / (2 * batch) as f64 * 1e6);
        }
    }
    out
}

#[multiproc::remote]
fn client(d: DictProxy<(u32, u64), u64>, me: u32, pairs: u64, start: Barrier) -> (f64, f64) {
    // One warm-up call: the connection is made before the clock starts.
    d.get(&(me, 0)).expect("get");
    start.wait().expect("barrier");
    let t0 = Instant::now();
    for i in 0..pairs {
        d.insert((me, i), i).expect("insert");
        d.get(&(me, i)).expect("get");
    }
    let since = |t: Instant| t.duration_since(EPOCH.with(|e| *e)).as_secs_f64();
    (since(t0), since(Instant::now()))
}

thread_local! {
    /// Only differences matter; each client measures from its own start.
    static EPOCH: Instant = Instant::now();
}

fn measure_ops() -> Result<Vec<f64>, String> {
    let e = |e: multiproc::Error| e.to_string();
    let manager = Manager::start().map_err(e)?;
    let d = manager.dict::<u64, u64>().map_err(e)?;
    let samples = multiproc::spawn(dict_ops, (d, SAMPLES, BATCH)).map_err(e)?.join().map_err(e)?;
    manager.shutdown().map_err(e)?;
    Ok(samples)
}

/// Operations per second of `n` clients at once.
fn measure_clients(n: u32) -> Result<Vec<f64>, String> {
    let e = |e: multiproc::Error| e.to_string();
    let manager = Manager::start().map_err(e)?;
    let d = manager.dict::<(u32, u64), u64>().map_err(e)?;
    let start = Barrier::new(n + 1).map_err(e)?;
    let pairs = (CLIENT_OPS / n as usize / 2) as u64;
    let children = (0..n)
        .map(|me| multiproc::spawn(client, (d.clone(), me, pairs, start.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    start.wait().map_err(e)?;
    let t0 = Instant::now();
    for child in children {
        child.join().map_err(e)?;
    }
    let dt = t0.elapsed().as_secs_f64();
    manager.shutdown().map_err(e)?;
    Ok(vec![(u64::from(n) * pairs * 2) as f64 / dt])
}

const WORKLOADS: [(&str, &str); 3] =
    [("ops", "multiproc_op_us"), ("clients1", "multiproc_clients_1"), ("clients8", "multiproc_clients_8")];

fn worker(workload: &str) {
    let samples = match workload {
        "ops" => measure_ops(),
        "clients1" => measure_clients(1),
        "clients8" => measure_clients(8),
        other => Err(format!("unknown workload {other:?}")),
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
    let (samples, batch, bare_batch, ops) =
        (SAMPLES.to_string(), BATCH.to_string(), BARE_BATCH.to_string(), CLIENT_OPS.to_string());
    for round in 0..ROUNDS {
        for placement in PLACEMENTS {
            let p = placement.name();
            eprintln!("manager bench: round {} of {ROUNDS}, {p}", round + 1);
            series.run_workers(placement, &me, WORKER, &WORKLOADS);
            let mut run = |name: &str, cmd: Result<Command, String>| series.run_in(placement, name, cmd);
            run("python_op_us", Ok(placement.command(python, &[PYTHON_SCRIPT, "ops", &samples, &batch])));
            run("python_clients_1", Ok(placement.command(python, &[PYTHON_SCRIPT, "clients", "1", &ops])));
            run("python_clients_8", Ok(placement.command(python, &[PYTHON_SCRIPT, "clients", "8", &ops])));
            run(
                "bare_rtt",
                limits.clone().map(|exe| placement.command(&exe, &["rtt", &samples, &bare_batch])),
            );
        }
    }
    print_report(&series);
}

fn print_report(series: &Series) {
    println!();
    println!(
        "manager proxies: {ROUNDS} interleaved rounds; a latency sample is the mean of {BATCH} insert+get \
         pairs; figures are mean / median; ratios on medians"
    );
    println!();
    print_placement_table(
        series,
        &[
            ("per operation, us: multiproc DictProxy", "multiproc_op_us"),
            ("per operation, us: python dict proxy", "python_op_us"),
            ("round trip, us: bare socketpair", "bare_rtt"),
            ("1 client, ops/s: multiproc", "multiproc_clients_1"),
            ("8 clients, ops/s: multiproc", "multiproc_clients_8"),
            ("1 client, ops/s: python", "python_clients_1"),
            ("8 clients, ops/s: python", "python_clients_8"),
        ],
    );
    print_placement_targets(
        series,
        &[
            ("multiproc op / bare round trip", "multiproc_op_us", "bare_rtt", Target::AtMost(1.5)),
            ("multiproc ops/s / python ops/s", "python_op_us", "multiproc_op_us", Target::AtLeast(2.0)),
            ("8 clients / 1 client, multiproc", "multiproc_clients_8", "multiproc_clients_1", Target::None),
            ("8 clients / 1 client, python", "python_clients_8", "python_clients_1", Target::None),
            ("8 clients, multiproc / python", "multiproc_clients_8", "python_clients_8", Target::None),
        ],
    );
    print_errors(series);
}
