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

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use multiproc::{Context, StartMethod};

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
const LIMITS_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/limits/spawn_limits.c");

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
    let limits = compile_limits(&limits_dir());
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

/// What a helper program printed: `SAMPLES <name> <ms> <ms> ...` lines.
type Printed = Vec<(String, Vec<f64>)>;

/// Runs a helper program and parses its sample lines; `what` names it in
/// errors.
fn run_helper(what: &str, cmd: &mut Command) -> Result<Printed, String> {
    let out = cmd.output().map_err(|e| format!("{what} could not be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut printed = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split_whitespace();
        if fields.next() != Some("SAMPLES") {
            continue;
        }
        let name = fields.next().ok_or_else(|| format!("{what} printed a malformed line {line:?}"))?;
        let samples = fields
            .map(|f| f.parse::<f64>().map_err(|_| format!("{what} printed a malformed line {line:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        printed.push((name.to_owned(), samples));
    }
    Ok(printed)
}

fn limits_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// Compiles the limits program; `Err` says why the limits are skipped.
fn compile_limits(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let exe = dir.join("spawn_limits");
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(LIMITS_SOURCE)
        .output()
        .map_err(|e| format!("the limits are skipped: `cc` could not be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the limits are skipped: `cc` failed to compile {LIMITS_SOURCE}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

/// A series is keyed by its source (`multiproc`, `python` or `limit`) and
/// its name.
type Key<'a> = (&'a str, &'a str);

/// Every series measured so far: its samples in milliseconds, or why it has
/// none.
#[derive(Debug, Default)]
struct Series(Vec<(String, String, Result<Vec<f64>, String>)>);

impl Series {
    fn entry(&mut self, (source, name): Key<'_>) -> &mut Result<Vec<f64>, String> {
        let i = match self.0.iter().position(|(s, n, _)| s == source && n == name) {
            Some(i) => i,
            None => {
                self.0.push((source.to_owned(), name.to_owned(), Ok(Vec::new())));
                self.0.len() - 1
            }
        };
        &mut self.0[i].2
    }

    /// Adds samples to a series, or marks it failed (keeping the first
    /// error).
    fn add(&mut self, key: Key<'_>, samples: Result<Vec<f64>, String>) {
        let entry = self.entry(key);
        match (entry, samples) {
            (Ok(all), Ok(more)) => all.extend(more),
            (entry @ Ok(_), Err(e)) => *entry = Err(e),
            (Err(_), _) => {}
        }
    }

    /// Adds what a helper printed to the series `keys` of `source`.
    fn add_all(&mut self, source: &str, keys: &[Key<'_>], printed: Result<Printed, String>) {
        match printed {
            Err(e) => self.fail(keys, &e),
            Ok(printed) => {
                for &key in keys {
                    let samples = printed
                        .iter()
                        .find(|(n, _)| n == key.1)
                        .map(|(_, s)| s.clone())
                        .ok_or_else(|| format!("{source}: no samples for {}", key.1));
                    self.add(key, samples);
                }
            }
        }
    }

    fn fail(&mut self, keys: &[Key<'_>], error: &str) {
        for &key in keys {
            self.add(key, Err(error.to_owned()));
        }
    }

    fn failed(&self, keys: &[Key<'_>]) -> bool {
        keys.iter()
            .any(|&(source, name)| self.0.iter().any(|(s, n, r)| s == source && n == name && r.is_err()))
    }

    fn stats(&self, (source, name): Key<'_>) -> Measured {
        match self.0.iter().find(|(s, n, _)| s == source && n == name) {
            None => Err(format!("{source} {name}: not measured")),
            Some((_, _, Err(e))) => Err(e.clone()),
            Some((_, _, Ok(samples))) if samples.is_empty() => Err(format!("{source} {name}: no samples")),
            Some((_, _, Ok(samples))) => Ok(Stats::from_samples(samples.clone())),
        }
    }

    fn errors(&self) -> Vec<&str> {
        let mut errors: Vec<&str> =
            self.0.iter().filter_map(|(_, _, r)| r.as_ref().err().map(String::as_str)).collect();
        errors.dedup();
        errors
    }
}

/// Milliseconds per start+join.
#[derive(Debug, Clone, Copy)]
struct Stats {
    count: usize,
    mean: f64,
    median: f64,
}

impl Stats {
    fn from_samples(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 { samples[n / 2] } else { (samples[n / 2 - 1] + samples[n / 2]) / 2.0 };
        Stats { count: n, mean, median }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = format!("{:.3} / {:.3}", self.mean, self.median);
        f.pad(&cell)
    }
}

/// A measurement, or why there is none.
type Measured = Result<Stats, String>;

/// `a / b` on medians, if both were measured.
fn ratio(a: &Measured, b: &Measured) -> Option<f64> {
    match (a, b) {
        (Ok(a), Ok(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

fn cell(m: &Measured) -> String {
    match m {
        Ok(s) => s.to_string(),
        Err(_) => "n/a".to_owned(),
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// How a ratio is judged.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The ratio must be at most this.
    AtMost(f64),
    /// The ratio must be at least this.
    AtLeast(f64),
    /// No target: shown for information.
    None,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}x"),
            Target::AtLeast(t) => format!(">= {t}x"),
            Target::None => "-".to_owned(),
        }
    }

    fn verdict(self, r: Option<f64>) -> &'static str {
        match (r, self) {
            (_, Target::None) => "info",
            (None, _) => "n/a",
            (Some(r), Target::AtMost(t)) if r <= t => "PASS",
            (Some(r), Target::AtLeast(t)) if r >= t => "PASS",
            _ => "MISS",
        }
    }
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
    println!("{:<44} | {:>8} | {:>8} | verdict", "ratio", "value", "target");
    println!("{:-<44}-+-{:-<8}-+-{:-<8}-+--------", "", "", "");
    for (label, r, target) in targets {
        println!("{label:<44} | {:>8} | {:>8} | {}", ratio_cell(r), target.text(), target.verdict(r));
    }

    let errors = series.errors();
    if !errors.is_empty() {
        println!();
        for e in errors {
            println!("note: {e}");
        }
    }
}
