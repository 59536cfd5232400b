//! Helpers shared by the integration tests: every wait is bounded, so a bug
//! fails a test instead of hanging the suite.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use multiproc::Process;

/// The longest any single child of the suite may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Joins `p`, failing the test (and killing the child) if it has not ended
/// within [`LIMIT`].
pub fn join<T: serde::de::DeserializeOwned>(mut p: Process<T>) -> multiproc::Result<T> {
    if !p.wait_timeout(LIMIT).expect("wait_timeout") {
        let _ = p.kill();
        panic!("process {} ({}) did not end within {LIMIT:?}", p.pid(), p.name());
    }
    p.join()
}

/// The state letter of `pid` in /proc (`R`, `S`, `Z`, ...), or `None` if
/// there is no such process.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; the state
    // follows the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// True if `pid` no longer runs: absent, or a zombie nobody reaped.
pub fn is_gone(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Waits until `pid` is gone, for at most `within`.
pub fn gone_within(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    is_gone(pid)
}

/// The pids whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}
