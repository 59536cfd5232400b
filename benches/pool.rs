//! The pool, beside Python's `multiprocessing.Pool` and the limits.
//!
//! In one run, on one machine, `ROUNDS` interleaved rounds of:
//!
//! - `map` of `x*x` over 1,000,000 integers on 2 workers, default chunks
//!   (three times back to back, after a run that is not measured);
//! - `imap` of 20,000 trivial tasks, one per chunk: the per-task overhead
//!   (the same);
//! - 1,000 CPU-bound tasks of about 2 ms each on 2 workers, against a
//!   sequential loop in this process, with rayon on 2 threads beside it
//!   (the limit: no processes, no copies);
//! - starting a 2-worker pool, running one task, and stopping the pool
//!   (the same);
//!
//! through multiproc and through Python (`benches/python/pool.py`, whose
//! CPU task is calibrated to about 2 ms of Python). Prints one table and
//! the ratios the project targets. A missed target is reported, never
//! asserted.
//!
//! Run with `cargo bench --bench pool`.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use multiproc::Pool;

mod report;
use report::{Series, Target, cell, print_errors, print_targets, ratio, run_helper};

/// Rounds the measurements are spread over.
const ROUNDS: usize = 5;
/// Measurements of map and imap per round, back to back after one
/// unmeasured run of each (as the Python script does).
const REPEAT: usize = 3;
const MAP_ITEMS: u64 = 1_000_000;
const IMAP_ITEMS: u64 = 20_000;
const CPU_TASKS: usize = 1_000;
/// The CPU time of one CPU-bound task.
const CPU_TASK: Duration = Duration::from_millis(2);

const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/pool.py");

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

/// A CPU-bound task: `n` rounds of a loop the optimizer cannot remove.
#[multiproc::remote]
fn spin(n: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        acc = black_box(acc.wrapping_mul(31).wrapping_add(i) & 0xffff_ffff);
    }
    acc
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t0 = Instant::now();
    let v = f();
    (t0.elapsed().as_secs_f64(), v)
}

/// Loop rounds of [`spin`] that take about [`CPU_TASK`] here.
fn calibrate_spin() -> u64 {
    let probe = 200_000;
    let best = (0..5).map(|_| timed(|| spin(probe)).0).fold(f64::INFINITY, f64::min);
    (probe as f64 * CPU_TASK.as_secs_f64() / best) as u64
}

/// One round of every multiproc workload, as `(name, value)` samples.
fn measure_round(pool: &Pool, spin_iters: u64) -> Result<Vec<(&'static str, f64)>, String> {
    let e = |e: multiproc::Error| e.to_string();
    let mut out = Vec::new();

    pool.map(square, 0..MAP_ITEMS).map_err(e)?; // warm-up, unmeasured
    for _ in 0..REPEAT {
        let (dt, v) = timed(|| pool.map(square, 0..MAP_ITEMS));
        let v = v.map_err(e)?;
        if v.len() as u64 != MAP_ITEMS || v[1000] != 1_000_000 {
            return Err("map returned the wrong results".to_owned());
        }
        out.push(("map_tasks_per_s", MAP_ITEMS as f64 / dt));
    }
    pool.imap(square, 0..IMAP_ITEMS).map_err(e)?.for_each(drop); // warm-up, unmeasured
    for _ in 0..REPEAT {
        let (dt, v) = timed(|| pool.imap(square, 0..IMAP_ITEMS).map(|it| it.collect::<Vec<_>>()));
        let v = v.map_err(e)?;
        if v.len() as u64 != IMAP_ITEMS || v.iter().any(Result::is_err) {
            return Err("imap returned errors".to_owned());
        }
        out.push(("imap_tasks_per_s", IMAP_ITEMS as f64 / dt));
    }

    let tasks = vec![spin_iters; CPU_TASKS];
    let (seq, _) = timed(|| tasks.iter().map(|&n| spin(n)).collect::<Vec<_>>());
    let (par, v) = timed(|| pool.map(spin, tasks.clone()));
    v.map_err(e)?;
    out.push(("cpu_speedup", seq / par));
    out.push(("spin_ms", seq / CPU_TASKS as f64 * 1e3));
    let rayon = rayon::ThreadPoolBuilder::new().num_threads(2).build().map_err(|e| e.to_string())?;
    let (par, _) = timed(|| {
        use rayon::prelude::*;
        rayon.install(|| tasks.par_iter().map(|&n| spin(n)).collect::<Vec<_>>())
    });
    out.push(("rayon_cpu_speedup", seq / par));

    Pool::new(2).and_then(|p| p.apply(square, (3,))).map_err(e)?; // warm-up, unmeasured
    for _ in 0..REPEAT {
        let (dt, v) = timed(|| Pool::new(2).and_then(|p| p.apply(square, (3,))));
        v.map_err(e)?;
        out.push(("start_ms", dt * 1e3));
    }
    Ok(out)
}

fn main() {
    let mut series = Series::default();
    let spin_iters = calibrate_spin();
    let pool = Pool::new(2).expect("a pool of 2");
    pool.map(square, 0..1000).expect("warm-up");
    for round in 0..ROUNDS {
        eprintln!("pool bench: round {} of {ROUNDS}", round + 1);
        match measure_round(&pool, spin_iters) {
            Ok(samples) => {
                for (name, value) in samples {
                    series.add(("multiproc", name), Ok(vec![value]));
                }
            }
            Err(e) => series.fail(&[("multiproc", "map_tasks_per_s")], &format!("multiproc: {e}")),
        }
        let names = ["map_tasks_per_s", "imap_tasks_per_s", "cpu_speedup", "spin_ms", "start_ms"];
        let keys: Vec<_> = names.iter().map(|n| ("python", *n)).collect();
        if !series.failed(&keys) {
            let printed = run_helper("python3", Command::new("python3").arg(PYTHON_SCRIPT).arg("1"));
            series.add_all("python", &keys, printed);
        }
    }
    drop(pool);
    print_report(&series);
}

fn print_report(series: &Series) {
    let s = |source, name| series.stats((source, name));
    println!();
    println!(
        "the pool on 2 workers: {ROUNDS} interleaved rounds; figures are mean / median, ratios on medians"
    );
    println!();
    let row = |label: &str, a: &str, b: &str| println!("{label:<44} | {a:>25} | {b:>25}");
    row("workload", "multiproc", "python");
    println!("{:-<44}-+-{:-<25}-+-{:-<25}", "", "", "");
    for (label, name) in [
        ("map x*x over 1M ints, tasks/s", "map_tasks_per_s"),
        ("imap chunksize 1, 20k tasks, tasks/s", "imap_tasks_per_s"),
        ("1000 CPU tasks: speedup on 2 workers", "cpu_speedup"),
        ("  one CPU task in the sequential loop, ms", "spin_ms"),
        ("start a pool of 2 + one task, ms", "start_ms"),
    ] {
        row(label, &cell(&s("multiproc", name)), &cell(&s("python", name)));
    }
    row("1000 CPU tasks: rayon on 2 threads, speedup", &cell(&s("multiproc", "rayon_cpu_speedup")), "-");
    if let Ok(imap) = s("multiproc", "imap_tasks_per_s") {
        println!("imap per-task cost: {:.2} us (median)", 1e6 / imap.median);
    }
    println!();
    let cpu = s("multiproc", "cpu_speedup").ok().map(|c| c.median);
    let targets = [
        (
            "map: multiproc / python tasks/s",
            ratio(&s("multiproc", "map_tasks_per_s"), &s("python", "map_tasks_per_s")),
            Target::AtLeast(10.0),
        ),
        (
            "imap chunksize 1: multiproc / python tasks/s",
            ratio(&s("multiproc", "imap_tasks_per_s"), &s("python", "imap_tasks_per_s")),
            Target::AtLeast(5.0),
        ),
        ("1000 x 2 ms on 2 workers: speedup", cpu, Target::AtLeast(1.9)),
        (
            "start+1 task: python ms / multiproc ms",
            ratio(&s("python", "start_ms"), &s("multiproc", "start_ms")),
            Target::AtLeast(5.0),
        ),
    ];
    print_targets(&targets);
    print_errors(series);
}
