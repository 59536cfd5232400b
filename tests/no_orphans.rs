//! A child never outlives its parent, and a parent that ends normally joins
//! its children first (PROC-31).

mod common;

use std::time::{Duration, Instant};

use multiproc::connection::Connection;
use multiproc::{Context, StartMethod};

use common::{LIMIT, join};

#[multiproc::remote]
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[multiproc::remote]
fn nap_then_report(ms: u64, done: Connection<String>) {
    std::thread::sleep(Duration::from_millis(ms));
    done.send("finished".to_owned()).expect("send");
}

/// Starts a long-sleeping grandchild with `method`, reports its pid, then
/// waits to be killed.
#[multiproc::remote]
fn parent_of_a_sleeper(method: StartMethod, report: Connection<u32>) {
    let child = Context::new(method).spawn(nap, (3_600_000,)).expect("spawn");
    report.send(child.pid()).expect("report");
    std::thread::sleep(Duration::from_secs(3600));
}

/// Starts a non-daemonic child that finishes after `ms` and a daemonic one
/// that would sleep for an hour, reports their pids, and returns at once.
#[multiproc::remote]
fn leaves_children(ms: u64, report: Connection<String>) -> (u32, u32) {
    let worker = multiproc::spawn(nap_then_report, (ms, report)).expect("spawn worker");
    let daemon = multiproc::Process::builder().daemon(true).spawn(nap, (3_600_000,)).expect("spawn daemon");
    (worker.pid(), daemon.pid())
}

fn recv_within<T: serde::Serialize + serde::de::DeserializeOwned>(conn: &Connection<T>) -> T {
    assert!(conn.poll(LIMIT).expect("poll"), "nothing arrived within {LIMIT:?}");
    conn.recv().expect("recv")
}

#[test]
fn sigkill_of_the_parent_takes_its_children_and_fork_server_along() {
    for method in StartMethod::ALL {
        let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
        let mut parent = multiproc::spawn(parent_of_a_sleeper, (method, theirs)).unwrap();
        let grandchild = recv_within(&mine);
        let parents_children = common::children_of(parent.pid());
        if method == StartMethod::ForkServer {
            assert!(
                parents_children.iter().any(|pid| common::cmdline(*pid).contains("multiproc:forkserver")),
                "no fork server among {parents_children:?}"
            );
        } else {
            assert!(parents_children.contains(&grandchild), "{method}: {parents_children:?}");
        }
        assert!(!common::is_gone(grandchild));

        parent.kill().unwrap();
        let killed_at = Instant::now();
        assert!(
            common::gone_within(grandchild, Duration::from_secs(1)),
            "{method}: grandchild outlived its parent"
        );
        for pid in parents_children {
            assert!(common::gone_within(pid, Duration::from_secs(1)), "{method}: {pid} outlived its parent");
        }
        assert!(killed_at.elapsed() < Duration::from_secs(1));
        assert!(matches!(join(parent), Err(multiproc::Error::ProcessDied { exitcode: -9, .. })));
    }
}

// PROC-31: at exit, daemonic children are terminated and the others joined.
#[test]
fn at_exit_non_daemons_are_joined_and_daemons_ended() {
    let (mine, theirs) = multiproc::pipe::<String>().unwrap();
    let start = Instant::now();
    let mut p = multiproc::spawn(leaves_children, (400, theirs)).unwrap();
    assert!(p.wait_timeout(LIMIT).unwrap());
    assert_eq!(p.exitcode(), Some(0), "the parent's exit went wrong");
    let (worker, daemon) = join(p).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(350), "the parent exited before joining its worker");
    assert_eq!(recv_within(&mine), "finished", "the worker was not allowed to finish");
    assert!(common::gone_within(worker, Duration::from_secs(2)));
    assert!(common::gone_within(daemon, Duration::from_secs(2)), "the daemon outlived its parent");
}
