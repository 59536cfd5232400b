//! The constructor that catches a child before `main`: a forged or garbled
//! child environment gives one line on stderr and exit code 2, and never a
//! run of the program's own `main` (here, the test harness).

mod common;

use std::process::Command;

use multiproc::{Context, StartMethod};

use common::join;

fn run_self_with(value: &str) -> std::process::Output {
    // Arguments that would make the harness run no test and say so, should
    // the constructor let the process through to `main`.
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_such_test"])
        .env("MULTIPROC_CHILD", value)
        .output()
        .unwrap()
}

#[test]
fn a_garbled_or_forged_child_environment_is_refused() {
    for value in [
        "",
        "garbage",
        "1:spawn",
        "9:spawn:5:ff",
        "1:spawn:x:ff",
        "1:spawn:0:ff",
        "1:spawn:77:ff",
        "1:forkserver:77:ff",
    ] {
        let out = run_self_with(value);
        let value: &str = value;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{value:?}: {stderr}");
        assert!(stderr.starts_with("multiproc: "), "{value:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{value:?}: main ran: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn without_the_variable_main_runs_as_usual() {
    let out =
        Command::new(std::env::current_exe().unwrap()).args(["--exact", "no_such_test"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 passed"));
}

#[multiproc::remote]
fn child_environment_is_clean() -> bool {
    std::env::var_os("MULTIPROC_CHILD").is_none()
}

#[test]
fn a_child_does_not_pass_its_marker_on() {
    for method in StartMethod::ALL {
        assert!(
            join(Context::new(method).spawn(child_environment_is_clean, ()).unwrap()).unwrap(),
            "{method}"
        );
    }
}
