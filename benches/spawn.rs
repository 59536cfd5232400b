//! Start+join of processes, beside Python and the bare system calls.
//!
//! In one run, on one machine: start and join a process running a trivial
//! `#[remote]` fn with each of multiproc's start methods; the same with
//! each of Python 3's `multiprocessing` start methods
//! (`benches/python/spawn.py`); and the physical limits, measured by a small
//! C program (`benches/limits/spawn_limits.c`, compiled with `cc -O2` at run
//! time): bare `fork`+`_exit`+`waitpid`, and `fork`+`execve` of this very
//! bench binary (which exits at once) + `waitpid`. Prints one table and the
//! ratios the project targets. A missed target is reported, never asserted.
//!
//! The machines are shared and noisy, so the measurements are interleaved:
//! `ROUNDS` rounds, each measuring every series `N / ROUNDS` times, so
//! that what is compared was measured within moments of each other.
//!
//! Run with `cargo bench --bench spawn`.

use std::process::Command;
use std::time::Instant;

use multiproc::{Context, StartMethod};

mod report;
use report::{
    Series, Target, cell, compile_limits, print_errors, print_targets, ratio, ratio_cell, run_helper,
};

/// Measured starts+joins per series.
const N: usize = 200;
/// Rounds the measurements are spread over.
const ROUNDS: usize = 4;
/// Unmeasured starts+joins before the measured ones: once per start method
/// in this process (they also start the fork server), and at the start of
/// every run of a helper program.
const WARMUP: usize = 5;
/// Set in the environment of the bench binary executed by the limits
/// program: `main` returns at once.
const EXIT_AT_ONCE: &str = "MULTIPROC_BENCH_EXIT_AT_ONCE";

const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/spawn.py");

/// The series of the limits program, as it names them.
const BARE_FORK: &str = "fork_waitpid";
const BARE_EXEC: &str = "fork_execve_waitpid";

/// Width of the first column of the table.
const LABEL: usize = 33;

#[multiproc::remote]
fn noop() -> u32 {
    1
}

fn main() {
    if std::env::var_os(EXIT_AT_ONCE).is_some() {
        return;
    }

    let mut series = Series::default();
    let per_round = N / ROUNDS;
    let limits = compile_limits("spawn_limits");
    if let Err(e) = &limits {
        series.fail(&[("limit", BARE_FORK), ("limit", BARE_EXEC)], e);
    }
    let me = std::env::current_exe();

    for round in 0..ROUNDS {
        eprintln!("spawn bench: round {} of {ROUNDS}", round + 1);
        if let Ok(limits) = &limits {
            let keys = [("limit", BARE_FORK), ("limit", BARE_EXEC)];
            if !series.failed(&keys) {
                let run =
                    me.as_ref().map_err(|e| format!("cannot find the bench binary: {e}")).and_then(|me| {
                        run_helper(
                            "the limits program",
                            Command::new(limits).arg(per_round.to_string()).arg(me),
                        )
                    });
                series.add_all("limit", &keys, run);
            }
        }
        for method in StartMethod::ALL {
            let key = ("multiproc", method.name());
            if !series.failed(&[key]) {
                let warmup = if round == 0 { WARMUP } else { 0 };
                series.add(key, measure_multiproc(method, per_round, warmup));
            }
        }
        let keys = StartMethod::ALL.map(|m| ("python", m.name()));
        if !series.failed(&keys) {
            let run = run_helper(
                "python3",
                Command::new("python3").arg(PYTHON_SCRIPT).arg(per_round.to_string()).arg(WARMUP.to_string()),
            );
            series.add_all("python", &keys, run);
        }
    }

    print_report(&series);
}

/// Starts and joins `n` processes with `method`, after `warmup` unmeasured
/// ones. Milliseconds per process.
fn measure_multiproc(method: StartMethod, n: usize, warmup: usize) -> Result<Vec<f64>, String> {
    let ctx = Context::new(method);
    let once = || -> Result<(), String> {
        let got =
            ctx.spawn(noop, ()).and_then(|p| p.join()).map_err(|e| format!("multiproc {method}: {e}"))?;
        if got != 1 {
            return Err(format!("multiproc {method}: the child returned {got}, not 1"));
        }
        Ok(())
    };
    for _ in 0..warmup {
        once()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        once()?;
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(samples)
}

fn print_report(series: &Series) {
    let ours = |m: StartMethod| series.stats(("multiproc", m.name()));
    let py = |m: StartMethod| series.stats(("python", m.name()));
    let bare_fork = series.stats(("limit", BARE_FORK));
    let bare_exec = series.stats(("limit", BARE_EXEC));
    let count = ours(StartMethod::ForkServer).map_or(0, |s| s.count);

    println!();
    println!(
        "start+join of a process running a trivial fn: {count} per series, in {ROUNDS} interleaved rounds, \
         after {WARMUP} warm-ups"
    );
    println!("figures are ms per process, mean / median; ratios are on medians");
    println!();
    let row =
        |label: &str, a: &str, b: &str, c: &str| println!("{label:<LABEL$} | {a:>19} | {b:>19} | {c:>17}");
    let rule = format!("{:-<LABEL$}-+-{:-<19}-+-{:-<19}-+-{:-<17}", "", "", "", "");
    row("method", "multiproc ms/proc", "python ms/proc", "python/multiproc");
    println!("{rule}");
    for method in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
        let (a, b) = (ours(method), py(method));
        row(method.name(), &cell(&a), &cell(&b), &ratio_cell(ratio(&b, &a)));
    }
    println!("{rule}");
    row("limit: fork+_exit+waitpid", &cell(&bare_fork), "-", "-");
    row("limit: fork+execve(bench)+waitpid", &cell(&bare_exec), "-", "-");
    println!();

    let fs = ours(StartMethod::ForkServer);
    let sp = ours(StartMethod::Spawn);
    let fk = ours(StartMethod::Fork);
    let targets = [
        ("multiproc forkserver / bare fork+waitpid", ratio(&fs, &bare_fork), Target::AtMost(3.0)),
        (
            "python forkserver / multiproc forkserver",
            ratio(&py(StartMethod::ForkServer), &fs),
            Target::AtLeast(10.0),
        ),
        ("multiproc spawn / bare fork+execve(bench)", ratio(&sp, &bare_exec), Target::AtMost(1.5)),
        ("python spawn / multiproc spawn", ratio(&py(StartMethod::Spawn), &sp), Target::AtLeast(5.0)),
        ("python fork / multiproc fork", ratio(&py(StartMethod::Fork), &fk), Target::None),
    ];
    print_targets(&targets);
    print_errors(series);
}
