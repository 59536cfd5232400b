//! The fork server: one re-executed copy of the program forks every child,
//! and it is restarted transparently if it dies (PROC-22). A file of its
//! own: a test here kills the server, which no other test may be using.

mod common;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use common::join;

#[multiproc::remote]
fn parent_pid() -> u32 {
    std::os::unix::process::parent_id()
}

fn fork_servers() -> Vec<u32> {
    common::children_of(std::process::id())
        .into_iter()
        .filter(|pid| common::cmdline(*pid).contains("multiproc:forkserver"))
        .collect()
}

#[test]
fn one_server_forks_every_child_and_comes_back_after_it_dies() {
    let parents: Vec<u32> =
        (0..3).map(|_| join(multiproc::spawn(parent_pid, ()).unwrap()).unwrap()).collect();
    let servers = fork_servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert!(parents.iter().all(|p| *p == servers[0]), "children of {parents:?}, server {servers:?}");
    assert_ne!(servers[0], std::process::id());

    kill(Pid::from_raw(servers[0] as i32), Signal::SIGKILL).unwrap();
    assert!(common::gone_within(servers[0], Duration::from_secs(5)));

    let parent = join(multiproc::spawn(parent_pid, ()).unwrap()).unwrap();
    let restarted = fork_servers();
    assert_eq!(restarted, vec![parent], "a new server forked the child");
    assert_ne!(parent, servers[0]);
    // The dead server was reaped, not left a zombie.
    assert_eq!(common::proc_state(servers[0]), None);
}
