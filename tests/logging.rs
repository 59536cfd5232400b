//! `log_to_stderr`: the runtime's records and the program's, from every
//! process, as Python prints them; the managers' lifecycle among them.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::LIMIT;

#[multiproc::remote]
fn say_hello() {
    log::info!("hello from the child");
    log::debug!("not shown at INFO");
}

/// The program whose standard error the tests read: `manager` starts a
/// manager, uses it and shuts it down; `child` runs a child that logs.
#[test]
#[ignore = "runs only as the other program of these tests"]
fn helper() {
    let Ok(what) = std::env::var("LOGGING_HELPER") else { return };
    multiproc::log_to_stderr(log::LevelFilter::Info);
    match what.as_str() {
        "manager" => {
            let manager = multiproc::Manager::start().unwrap();
            let d = manager.dict::<u8, u8>().unwrap();
            d.insert(1, 2).unwrap();
            manager.shutdown().unwrap();
        }
        "child" => {
            log::warn!("a warning from the parent");
            for method in multiproc::StartMethod::ALL {
                multiproc::Context::new(method).spawn(say_hello, ()).unwrap().join().unwrap();
            }
        }
        other => panic!("unknown helper task {other}"),
    }
}

/// Runs the helper doing `what` and returns its standard error, within
/// LIMIT.
fn stderr_of(what: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env("LOGGING_HELPER", what)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut out);
        let _ = tx.send(out);
    });
    let out = rx.recv_timeout(LIMIT).expect("the helper's stderr did not end");
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the helper failed: {status}\n{out}");
            return out;
        }
        assert!(Instant::now() < deadline, "the helper did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// The seed notes' records of a manager's life, from the manager's process
// and from the main one.
#[test]
fn a_managers_life_is_logged() {
    let out = stderr_of("manager");
    let lines: Vec<&str> = out.lines().collect();
    let serving = lines
        .iter()
        .position(|l| l.starts_with("[INFO/SyncManager-1] manager serving at '@multiproc-manager-"))
        .unwrap_or_else(|| panic!("no serving record in:\n{out}"));
    let sending = lines
        .iter()
        .position(|l| *l == "[INFO/MainProcess] sending shutdown message to manager")
        .unwrap_or_else(|| panic!("no shutdown record in:\n{out}"));
    let exiting = lines
        .iter()
        .position(|l| *l == "[INFO/SyncManager-1] manager exiting with exitcode 0")
        .unwrap_or_else(|| panic!("no exit record in:\n{out}"));
    assert!(serving < sending && sending < exiting, "out of order:\n{out}");
}

// The program's own records, in the parent and in a child of every start
// method, at the level asked for.
#[test]
fn records_of_parent_and_children_are_printed() {
    let out = stderr_of("child");
    assert!(out.lines().any(|l| l == "[WARNING/MainProcess] a warning from the parent"), "{out}");
    for n in 1..=multiproc::StartMethod::ALL.len() {
        let line = format!("[INFO/Process-{n}] hello from the child");
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    assert!(!out.contains("not shown"), "{out}");
}
