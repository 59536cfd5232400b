//! [`log_to_stderr`]: the runtime's own records and the program's, from
//! every process, on standard error as Python's `log_to_stderr` prints
//! them (`[INFO/MainProcess] message`). It lives with the start methods
//! because a child installs it while it starts, before its target runs.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use super::identity;

/// Whether this process prints records with [`log_to_stderr`], so that its
/// children do too.
static IN_USE: AtomicBool = AtomicBool::new(false);

struct Stderr;

static STDERR: Stderr = Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Warn => "WARNING",
            other => other.as_str(),
        };
        // One write per record, so that records of several processes on
        // one stderr do not mix within a line.
        let line = format!("[{level}/{}] {}\n", identity::name(), record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Prints log records of `level` and above on standard error as
/// `[INFO/ProcessName] message`: the runtime's own (processes started and
/// joined, managers serving and exiting, ...) and the program's `log`
/// records, in this process and in every child started from now on
/// (Python's `multiprocessing.log_to_stderr`).
///
/// If the program has installed another logger already, this process's
/// records go to it, at this level, and children print none.
///
/// ```
/// multiproc::log_to_stderr(log::LevelFilter::Info);
/// log::info!("hello"); // [INFO/MainProcess] hello
/// ```
pub fn log_to_stderr(level: log::LevelFilter) {
    install();
    log::set_max_level(level);
}

/// Whether children should print their records on stderr.
pub(crate) fn in_use() -> bool {
    IN_USE.load(Ordering::SeqCst)
}

/// Prints this process's records on stderr, unless another logger is
/// installed: in [`log_to_stderr`], and in a child whose parent prints
/// its records (the child spec says so), at the level the spec gives.
pub(crate) fn install() {
    if log::set_logger(&STDERR).is_ok() {
        IN_USE.store(true, Ordering::SeqCst);
    }
}
