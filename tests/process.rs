//! Processes: lifecycle, names, family, and every way a child can end.
//! IDs such as PROC-05 cite ../shared/spec/cpython-conformance.md.

mod common;

use std::time::{Duration, Instant};

use multiproc::{Context, Error, Process, StartMethod};
use serde::{Deserialize, Serialize};

use common::{LIMIT, join};

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn echo_args(a: i64, b: String, c: Vec<Option<u8>>) -> (i64, String, Vec<Option<u8>>) {
    (a, b, c)
}

/// A process's name, its pid, and its parent's name and pid.
type Identity = (String, u32, Option<(String, u32)>);

#[multiproc::remote]
fn whoami() -> Identity {
    let me = multiproc::current_process();
    let parent = multiproc::parent_process().map(|p| (p.name().to_owned(), p.pid()));
    (me.name().to_owned(), me.pid(), parent)
}

#[multiproc::remote]
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[multiproc::remote]
fn panics(message: String) -> u32 {
    panic!("{message}")
}

#[multiproc::remote]
fn aborts() {
    std::process::abort()
}

#[multiproc::remote]
fn segfaults() {
    // Rust's runtime may have a SIGSEGV handler (a `Fork` child inherits the
    // parent's); on a signal that is not a real fault it restores the
    // default and returns, as a faulting instruction would then run again
    // and die. Raising a second time plays that part.
    loop {
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV).expect("raise");
    }
}

#[multiproc::remote]
fn exits(code: i32) {
    std::process::exit(code)
}

#[multiproc::remote]
fn big_result(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[multiproc::remote]
fn fallible(ok: bool) -> Result<u32, String> {
    if ok { Ok(7) } else { Err("refused".to_owned()) }
}

#[multiproc::remote]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

#[multiproc::remote]
fn spawn_grandchild(method: StartMethod) -> (String, Identity, u32) {
    let me = multiproc::current_process();
    let child = Context::new(method).spawn(whoami, ()).expect("spawn grandchild");
    let name = child.name().to_owned();
    (name, child.join().expect("join grandchild"), me.pid())
}

#[multiproc::remote]
fn start_method() -> StartMethod {
    multiproc::get_start_method()
}

#[multiproc::remote]
fn comm() -> String {
    std::fs::read_to_string("/proc/self/comm").expect("/proc/self/comm").trim_end().to_owned()
}

fn for_each_method(test: impl Fn(StartMethod)) {
    for method in StartMethod::ALL {
        test(method);
    }
}

#[test]
fn join_returns_the_value_under_every_method() {
    for_each_method(|method| {
        let ctx = Context::new(method);
        assert_eq!(join(ctx.spawn(square, (7,)).unwrap()).unwrap(), 49, "{method}");
        let args = (-3, "three".to_owned(), vec![Some(3), None]);
        assert_eq!(join(ctx.spawn(echo_args, args.clone()).unwrap()).unwrap(), args, "{method}");
    });
}

// CTX-01: a child reports the method that started it.
#[test]
fn a_child_reports_its_start_method() {
    for_each_method(|method| {
        assert_eq!(join(Context::new(method).spawn(start_method, ()).unwrap()).unwrap(), method);
    });
    assert_eq!(multiproc::get_start_method(), StartMethod::ForkServer, "a context leaves the default alone");
}

// A re-executed child shows under the program's name in ps and top.
#[test]
fn a_child_has_the_program_name() {
    let mine = std::fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_owned();
    for_each_method(|method| {
        assert_eq!(join(Context::new(method).spawn(comm, ()).unwrap()).unwrap(), mine, "{method}");
    });
}

#[test]
fn a_result_returned_by_the_fn_travels_as_it_is() {
    assert_eq!(join(multiproc::spawn(fallible, (true,)).unwrap()).unwrap(), Ok(7));
    assert_eq!(join(multiproc::spawn(fallible, (false,)).unwrap()).unwrap(), Err("refused".to_owned()));
}

// PROC-01
#[test]
fn the_main_process_knows_itself() {
    let me = multiproc::current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    assert_eq!(multiproc::parent_process(), None);
}

// PROC-02, PROC-04: the child sees its own name and pid, and its parent is
// the process that started it, never the fork server.
#[test]
fn a_child_knows_its_name_pid_and_parent() {
    for_each_method(|method| {
        let p = Context::new(method).process_builder().name("worker-1").spawn(whoami, ()).unwrap();
        let pid = p.pid();
        assert_eq!(p.name(), "worker-1");
        let (name, child_pid, parent) = join(p).unwrap();
        assert_eq!(name, "worker-1", "{method}");
        assert_eq!(child_pid, pid, "{method}");
        assert_eq!(parent, Some(("MainProcess".to_owned(), std::process::id())), "{method}");
    });
}

// PROC-13, PROC-14: default names count children; a child's child is named
// after its parent, and nesting works under every method.
#[test]
fn default_names_follow_the_process_tree() {
    for_each_method(|method| {
        let p = Context::new(method).spawn(spawn_grandchild, (method,)).unwrap();
        let parent_name = p.name().to_owned();
        let number = parent_name.strip_prefix("Process-").expect("default name");
        assert!(number.parse::<u32>().is_ok(), "{parent_name}");
        let parent_pid = p.pid();
        let (grandchild_name, (seen_name, _, grandparent), reported_pid) = join(p).unwrap();
        assert_eq!(grandchild_name, format!("{parent_name}:1"), "{method}");
        assert_eq!(seen_name, grandchild_name, "{method}");
        assert_eq!(grandparent, Some((parent_name.clone(), parent_pid)), "{method}");
        assert_eq!(reported_pid, parent_pid);
    });
}

// PROC-05, MISC-02
#[test]
fn lifecycle_is_visible_while_running_and_after_join() {
    let mut p = multiproc::spawn(nap, (300,)).unwrap();
    let pid = p.pid();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert!(multiproc::active_children().iter().any(|c| c.pid() == pid));
    assert!(p.wait_timeout(LIMIT).unwrap());
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    join(p).unwrap();
    assert!(!multiproc::active_children().iter().any(|c| c.pid() == pid));
}

#[test]
fn wait_timeout_gives_up_on_time_and_sees_the_end() {
    let mut p = multiproc::spawn(nap, (10_000,)).unwrap();
    let start = Instant::now();
    assert!(!p.wait_timeout(Duration::from_millis(200)).unwrap());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(5), "{waited:?}");
    p.kill().unwrap();
    assert!(p.wait_timeout(LIMIT).unwrap());
    assert_eq!(p.exitcode(), Some(-9));
}

// PROC-10
#[test]
fn terminate_ends_the_child_with_sigterm() {
    for_each_method(|method| {
        let mut p = Context::new(method).spawn(nap, (30_000,)).unwrap();
        let pid = p.pid();
        p.terminate().unwrap();
        let start = Instant::now();
        match join(p) {
            Err(Error::ProcessDied { pid: died, exitcode: -15 }) => assert_eq!(died, pid),
            other => panic!("{method}: expected death by SIGTERM, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!multiproc::active_children().iter().any(|c| c.pid() == pid));
    });
}

// PROC-11
#[test]
fn kill_ends_the_child_with_sigkill() {
    let mut p = multiproc::spawn(nap, (30_000,)).unwrap();
    p.kill().unwrap();
    assert!(matches!(join(p), Err(Error::ProcessDied { exitcode: -9, .. })));
}

#[test]
fn signalling_an_ended_child_is_not_an_error() {
    let mut p = multiproc::spawn(square, (2,)).unwrap();
    assert!(p.wait_timeout(LIMIT).unwrap());
    p.terminate().unwrap();
    p.kill().unwrap();
    assert_eq!(join(p).unwrap(), 4);
}

#[test]
fn a_panic_is_a_remote_error_with_message_pid_and_location() {
    for_each_method(|method| {
        let p = Context::new(method).spawn(panics, ("out of luck".to_owned(),)).unwrap();
        let pid = p.pid();
        let Err(Error::Remote(e)) = join(p) else { panic!("{method}: expected a remote panic") };
        assert_eq!(e.message(), "out of luck");
        assert_eq!(e.pid(), pid);
        assert!(e.function().ends_with("::panics"), "{}", e.function());
        let location = e.location().expect("location");
        assert!(location.starts_with("tests/process.rs:"), "{location}");
        let shown = e.to_string();
        assert!(shown.contains("out of luck") && shown.contains(&pid.to_string()), "{shown}");
    });
}

#[test]
fn a_panicking_child_exits_with_code_1() {
    let mut p = multiproc::spawn(panics, ("x".to_owned(),)).unwrap();
    assert!(p.wait_timeout(LIMIT).unwrap());
    assert_eq!(p.exitcode(), Some(1));
}

#[test]
fn abort_segfault_and_exit_are_process_deaths() {
    for_each_method(|method| {
        let ctx = Context::new(method);
        assert!(matches!(join(ctx.spawn(aborts, ()).unwrap()), Err(Error::ProcessDied { exitcode: -6, .. })));
        assert!(matches!(
            join(ctx.spawn(segfaults, ()).unwrap()),
            Err(Error::ProcessDied { exitcode: -11, .. })
        ));
        assert!(matches!(join(ctx.spawn(exits, (3,)).unwrap()), Err(Error::ProcessDied { exitcode: 3, .. })));
        // exit(0) without a result is still a death without a result.
        assert!(matches!(join(ctx.spawn(exits, (0,)).unwrap()), Err(Error::ProcessDied { exitcode: 0, .. })));
    });
}

#[test]
fn process_died_explains_itself() {
    let by_signal = Error::ProcessDied { pid: 42, exitcode: -9 }.to_string();
    assert!(by_signal.contains("42") && by_signal.contains("SIGKILL"), "{by_signal}");
    let by_exit = Error::ProcessDied { pid: 42, exitcode: 3 }.to_string();
    assert!(by_exit.contains("exited with code 3"), "{by_exit}");
}

/// A value whose encoding always fails.
#[derive(Debug, Deserialize)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be encoded"))
    }
}

#[multiproc::remote]
fn takes_unencodable(_value: Unencodable) {}

#[test]
fn arguments_that_fail_to_encode_start_no_process() {
    let before = multiproc::active_children().len();
    let started = common::children_of(std::process::id()).len();
    match multiproc::spawn(takes_unencodable, (Unencodable,)) {
        Err(Error::Codec(msg)) => assert!(msg.contains("Unencodable"), "{msg}"),
        other => panic!("expected a codec error, got {other:?}"),
    }
    assert!(multiproc::active_children().len() <= before);
    assert!(common::children_of(std::process::id()).len() <= started);
}

/// A `Remote` that no `#[remote]` registered: what a child of a different
/// binary would be asked to run.
#[derive(Clone, Copy)]
struct NotRegistered;

impl multiproc::Remote for NotRegistered {
    type Args = ();
    type Output = u8;
    const NAME: &'static str = "elsewhere::not_registered";
    fn call(&self, (): ()) -> u8 {
        0
    }
}

#[test]
fn a_name_the_child_does_not_know_is_unknown_function() {
    for_each_method(|method| match join(Context::new(method).spawn(NotRegistered, ()).unwrap()) {
        Err(Error::UnknownFunction(name)) => assert_eq!(name, "elsewhere::not_registered"),
        other => panic!("{method}: expected UnknownFunction, got {other:?}"),
    });
}

// A result larger than a socket buffer: the child blocks writing it until the
// parent reads, so waiting must read as it waits.
#[test]
fn a_large_result_does_not_deadlock_wait_or_join() {
    for_each_method(|method| {
        let len = 8 << 20;
        let mut p = Context::new(method).spawn(big_result, (len,)).unwrap();
        assert!(p.wait_timeout(LIMIT).unwrap(), "{method}: the child could not finish writing");
        let bytes = join(p).unwrap();
        assert_eq!(bytes.len(), len);
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    });
}

// PROC-17
#[test]
fn many_processes_start_and_join() {
    let children: Vec<_> = (0..40u64).map(|i| multiproc::spawn(square, (i,)).unwrap()).collect();
    let results: Vec<u64> = children.into_iter().map(|p| join(p).unwrap()).collect();
    assert_eq!(results, (0..40u64).map(|i| i * i).collect::<Vec<_>>());
}

// PROC-17
#[test]
fn many_processes_terminated_at_once_all_report_sigterm() {
    let mut children: Vec<_> = (0..20).map(|_| multiproc::spawn(nap, (30_000,)).unwrap()).collect();
    for p in &mut children {
        p.terminate().unwrap();
    }
    for p in children {
        assert!(matches!(join(p), Err(Error::ProcessDied { exitcode: -15, .. })));
    }
}

// PROC-19: a child does not inherit its siblings' channels.
#[test]
fn fds_in_a_child_do_not_grow_with_running_siblings() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let ctx = Context::new(method);
        let alone = join(ctx.spawn(open_fds, ()).unwrap()).unwrap();
        let mut siblings: Vec<_> = (0..8).map(|_| ctx.spawn(nap, (30_000,)).unwrap()).collect();
        let crowded = join(ctx.spawn(open_fds, ()).unwrap()).unwrap();
        for p in &mut siblings {
            p.kill().unwrap();
        }
        for p in siblings {
            let _ = join(p);
        }
        assert_eq!(alone, crowded, "{method}");
    }
}

// No zombies: a joined child is reaped, and so is one whose handle was
// dropped, at the latest by active_children().
#[test]
fn every_child_is_reaped() {
    for_each_method(|method| {
        let ctx = Context::new(method);
        let p = ctx.spawn(square, (3,)).unwrap();
        let pid = p.pid();
        join(p).unwrap();
        assert_ne!(common::proc_state(pid), Some('Z'), "{method}: joined child left a zombie");

        let dropped = ctx.spawn(square, (3,)).unwrap();
        let pid = dropped.pid();
        drop(dropped);
        let deadline = Instant::now() + LIMIT;
        while multiproc::active_children().iter().any(|c| c.pid() == pid) {
            assert!(Instant::now() < deadline, "{method}: dropped child never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(common::proc_state(pid), Some('Z'), "{method}: dropped child left a zombie");
    });
}

#[test]
fn a_daemon_flag_is_kept() {
    let p = Process::builder().daemon(true).spawn(square, (1,)).unwrap();
    assert!(p.is_daemon());
    join(p).unwrap();
    let p = multiproc::spawn(square, (1,)).unwrap();
    assert!(!p.is_daemon(), "daemon defaults to the parent's flag, false in the main process");
    join(p).unwrap();
}

#[test]
fn debug_shows_name_pid_and_state() {
    let p = Process::builder().name("dbg").spawn(nap, (0,)).unwrap();
    let shown = format!("{p:?}");
    assert!(shown.contains("dbg") && shown.contains(&p.pid().to_string()), "{shown}");
    join(p).unwrap();
}

#[test]
fn cpu_count_is_at_least_one() {
    assert!(multiproc::cpu_count() >= 1);
}
