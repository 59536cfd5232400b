//! The seed notes' Logging example: `log_to_stderr`, a warning, and a
//! manager started and dropped, whose process logs its life.
//!
//! The records go to standard error. To check them, the example runs
//! itself again with its standard error captured, then prints what that
//! run printed.

use std::process::Command;

/// Set in the run whose records are checked.
const INNER: &str = "MULTIPROC_LOGGING_EXAMPLE_INNER";

fn main() -> multiproc::Result<()> {
    if std::env::var_os(INNER).is_some() {
        multiproc::log_to_stderr(log::LevelFilter::Info);
        log::warn!("doomed");
        let m = multiproc::Manager::start()?;
        drop(m);
        return Ok(());
    }

    let out = Command::new(std::env::current_exe()?).env(INNER, "1").output()?;
    let records = String::from_utf8_lossy(&out.stderr);
    print!("{records}");
    assert!(out.status.success(), "the logging run failed: {}", out.status);
    let lines: Vec<&str> = records.lines().collect();
    assert_eq!(lines.first(), Some(&"[WARNING/MainProcess] doomed"));
    let at = |prefix: &str| {
        lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` record"))
    };
    let serving = at("[INFO/SyncManager-1] manager serving at '@multiproc-manager-");
    let sending = at("[INFO/MainProcess] sending shutdown message to manager");
    let exiting = at("[INFO/SyncManager-1] manager exiting with exitcode 0");
    assert!(serving < sending && sending < exiting, "records out of order");
    Ok(())
}
