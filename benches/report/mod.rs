//! What the benches share: running helper programs (Python scripts, the
//! C programs that measure the physical limits) that print their samples
//! as `SAMPLES <name> <value> <value> ...` lines, keeping the samples of
//! each series, and printing ratios against targets. A missed target is
//! reported, never asserted.

#![allow(dead_code)] // each bench uses a different subset

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a helper program printed: `SAMPLES <name> <ms> <ms> ...` lines.
pub type Printed = Vec<(String, Vec<f64>)>;

/// Runs a helper program and parses its sample lines; `what` names it in
/// errors.
pub fn run_helper(what: &str, cmd: &mut Command) -> Result<Printed, String> {
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

/// Compiles the C program `benches/limits/<name>.c` with `cc -O2`; `Err`
/// says why the limits it measures are skipped.
pub fn compile_limits(name: &str) -> Result<PathBuf, String> {
    let dir = limits_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/limits").join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(&source)
        .output()
        .map_err(|e| format!("the limits are skipped: `cc` could not be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the limits are skipped: `cc` failed to compile {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

/// A series is keyed by its source (`multiproc`, `python` or `limit`) and
/// its name.
pub type Key<'a> = (&'a str, &'a str);

/// Every series measured so far: its samples in milliseconds, or why it has
/// none.
#[derive(Debug, Default)]
pub struct Series(Vec<(String, String, Result<Vec<f64>, String>)>);

impl Series {
    pub fn entry(&mut self, (source, name): Key<'_>) -> &mut Result<Vec<f64>, String> {
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
    pub fn add(&mut self, key: Key<'_>, samples: Result<Vec<f64>, String>) {
        let entry = self.entry(key);
        match (entry, samples) {
            (Ok(all), Ok(more)) => all.extend(more),
            (entry @ Ok(_), Err(e)) => *entry = Err(e),
            (Err(_), _) => {}
        }
    }

    /// Adds what a helper printed to the series `keys` of `source`.
    pub fn add_all(&mut self, source: &str, keys: &[Key<'_>], printed: Result<Printed, String>) {
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

    pub fn fail(&mut self, keys: &[Key<'_>], error: &str) {
        for &key in keys {
            self.add(key, Err(error.to_owned()));
        }
    }

    /// Runs `cmd`, unless the series `name` of `placement` failed before,
    /// and adds what it printed to that series.
    pub fn run_in(&mut self, placement: Placement, name: &str, cmd: Result<Command, String>) {
        let key = (placement.name(), name);
        if !self.failed(&[key]) {
            let printed = cmd.and_then(|mut cmd| run_helper(name, &mut cmd));
            self.add_all(placement.name(), &[key], printed);
        }
    }

    /// Runs the bench binary `me` again in `placement` as a worker for each
    /// of `workloads` (the workload's name in the environment variable
    /// `env`), adding each one's samples to its series.
    pub fn run_workers(
        &mut self,
        placement: Placement,
        me: &Result<PathBuf, String>,
        env: &str,
        workloads: &[(&str, &str)],
    ) {
        for (workload, name) in workloads {
            let cmd = me.clone().map(|me| {
                let mut cmd = placement.command(&me, &[]);
                cmd.env(env, workload);
                cmd
            });
            self.run_in(placement, name, cmd);
        }
    }

    pub fn failed(&self, keys: &[Key<'_>]) -> bool {
        keys.iter()
            .any(|&(source, name)| self.0.iter().any(|(s, n, r)| s == source && n == name && r.is_err()))
    }

    pub fn stats(&self, (source, name): Key<'_>) -> Measured {
        match self.0.iter().find(|(s, n, _)| s == source && n == name) {
            None => Err(format!("{source} {name}: not measured")),
            Some((_, _, Err(e))) => Err(e.clone()),
            Some((_, _, Ok(samples))) if samples.is_empty() => Err(format!("{source} {name}: no samples")),
            Some((_, _, Ok(samples))) => Ok(Stats::from_samples(samples.clone())),
        }
    }

    pub fn errors(&self) -> Vec<&str> {
        let mut errors: Vec<&str> =
            self.0.iter().filter_map(|(_, _, r)| r.as_ref().err().map(String::as_str)).collect();
        errors.dedup();
        errors
    }
}

/// Milliseconds per start+join.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
}

impl Stats {
    pub fn from_samples(mut samples: Vec<f64>) -> Self {
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
pub type Measured = Result<Stats, String>;

/// `a / b` on medians, if both were measured.
pub fn ratio(a: &Measured, b: &Measured) -> Option<f64> {
    match (a, b) {
        (Ok(a), Ok(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

pub fn cell(m: &Measured) -> String {
    match m {
        Ok(s) => s.to_string(),
        Err(_) => "n/a".to_owned(),
    }
}

pub fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// How a ratio is judged.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The ratio must be at most this.
    AtMost(f64),
    /// The ratio must be at least this.
    AtLeast(f64),
    /// No target: shown for information.
    None,
}

impl Target {
    pub fn text(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}x"),
            Target::AtLeast(t) => format!(">= {t}x"),
            Target::None => "-".to_owned(),
        }
    }

    pub fn verdict(self, r: Option<f64>) -> &'static str {
        match (r, self) {
            (_, Target::None) => "info",
            (None, _) => "n/a",
            (Some(r), Target::AtMost(t)) if r <= t => "PASS",
            (Some(r), Target::AtLeast(t)) if r >= t => "PASS",
            _ => "MISS",
        }
    }
}

/// Prints the table of targets: each ratio, its target and the verdict.
pub fn print_targets(targets: &[(&str, Option<f64>, Target)]) {
    let width = targets.iter().map(|(label, ..)| label.len()).max().unwrap_or(5);
    println!("{:<width$} | {:>8} | {:>8} | verdict", "ratio", "value", "target");
    println!("{:-<width$}-+-{:-<8}-+-{:-<8}-+--------", "", "", "");
    for &(label, r, target) in targets {
        println!("{label:<width$} | {:>8} | {:>8} | {}", ratio_cell(r), target.text(), target.verdict(r));
    }
}

/// Prints why the series that have no figures have none.
pub fn print_errors(series: &Series) {
    let errors = series.errors();
    if !errors.is_empty() {
        println!();
        for e in errors {
            println!("note: {e}");
        }
    }
}

/// Where the processes of a series run.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    Unpinned,
    /// Every process on core 0 (`taskset -c 0`): on a VM a wake-up across
    /// cores costs tens of microseconds, on one core it is a context
    /// switch.
    Pinned,
}

/// Both placements, in the order the tables show them.
pub const PLACEMENTS: [Placement; 2] = [Placement::Unpinned, Placement::Pinned];

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Unpinned => "unpinned",
            Placement::Pinned => "pinned",
        }
    }

    /// A command running `program` with `args` in this placement.
    pub fn command(self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = match self {
            Placement::Unpinned => Command::new(program),
            Placement::Pinned => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", "0"]).arg(program);
                cmd
            }
        };
        cmd.args(args);
        cmd
    }
}

/// What a bench binary re-run as a measuring worker prints: the samples of
/// `workload` as `SAMPLES <name> ...` (its series' name from `workloads`),
/// or the error, exiting with failure.
pub fn print_samples(workload: &str, workloads: &[(&str, &str)], samples: Result<Vec<f64>, String>) {
    let name = workloads.iter().find(|(w, _)| *w == workload).map_or(workload, |(_, name)| name);
    match samples {
        Ok(samples) => {
            let cells: Vec<String> = samples.iter().map(|s| format!("{s:.6}")).collect();
            println!("SAMPLES {name} {}", cells.join(" "));
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints a table with a column per `(header, source)` and a row per
/// `(label, series names)`, one name per column ("" where that source has
/// no such series), then a blank line.
pub fn print_table(series: &Series, columns: &[(&str, &str)], rows: &[(&str, Vec<&str>)]) {
    let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0).max(6);
    let line = |label: &str, cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| format!("{c:>23}")).collect();
        println!("{label:<label_width$} | {}", cells.join(" | "));
    };
    line("series", &columns.iter().map(|(h, _)| (*h).to_owned()).collect::<Vec<_>>());
    let rule: Vec<String> = columns.iter().map(|_| "-".repeat(23)).collect();
    println!("{}-+-{}", "-".repeat(label_width), rule.join("-+-"));
    for (label, names) in rows {
        let cells: Vec<String> = columns
            .iter()
            .zip(names)
            .map(
                |((_, source), name)| {
                    if name.is_empty() { "-".to_owned() } else { cell(&series.stats((source, name))) }
                },
            )
            .collect();
        line(label, &cells);
    }
    println!();
}

/// Prints each ratio `(label, numerator, denominator, target)` of two
/// series against its target.
pub fn print_ratios(series: &Series, ratios: &[(String, Key<'_>, Key<'_>, Target)]) {
    let targets: Vec<_> = ratios
        .iter()
        .map(|(label, a, b, target)| (label.as_str(), ratio(&series.stats(*a), &series.stats(*b)), *target))
        .collect();
    print_targets(&targets);
}

/// [`print_table`] with a column per placement, the same series in each.
pub fn print_placement_table(series: &Series, rows: &[(&str, &str)]) {
    let columns: Vec<(&str, &str)> =
        vec![("unpinned", Placement::Unpinned.name()), ("pinned (taskset -c 0)", Placement::Pinned.name())];
    let rows: Vec<(&str, Vec<&str>)> = rows.iter().map(|(label, name)| (*label, vec![*name; 2])).collect();
    print_table(series, &columns, &rows);
}

/// [`print_ratios`] for each placement: each ratio (label, numerator
/// series, denominator series) of that placement's series.
pub fn print_placement_targets(series: &Series, ratios: &[(&str, &str, &str, Target)]) {
    let mut all = Vec::new();
    for p in PLACEMENTS {
        for (label, numerator, denominator, target) in ratios {
            all.push((
                format!("{}: {label}", p.name()),
                (p.name(), *numerator),
                (p.name(), *denominator),
                *target,
            ));
        }
    }
    print_ratios(series, &all);
}
