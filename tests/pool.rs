//! The pool: Python's Pool behaviours (POOL-*, ASYNC-* of
//! ../shared/spec/cpython-conformance.md), and the failures Python's pool
//! cannot survive. Every wait is bounded: a bug fails a test, never hangs
//! the suite.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use multiproc::{Error, Pool, StartMethod};

use common::LIMIT;

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[multiproc::remote]
fn sleep_then(ms: u64, value: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    value
}

#[multiproc::remote]
fn fail_on(x: u64, bad: u64) -> u64 {
    assert_ne!(x, bad, "item {x} is bad");
    x
}

#[multiproc::remote]
fn pid_of(_x: u64) -> u32 {
    std::process::id()
}

#[multiproc::remote]
fn name_of(_x: u64) -> String {
    multiproc::current_process().name().to_owned()
}

/// Runs `f` on a thread and fails the test if it takes longer than LIMIT.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT).unwrap_or_else(|_| panic!("{what} did not finish within {LIMIT:?}"))
}

// POOL-01
#[test]
fn map_starmap_apply_and_their_async_forms_agree_with_a_loop() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..100).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..100).unwrap(), expected);
    assert_eq!(pool.map_chunked(square, 0..100, 20).unwrap(), expected);
    assert_eq!(pool.map_async(square, 0..100).unwrap().get().unwrap(), expected);
    let pairs: Vec<(i64, i64)> = (0..50).map(|i| (i, 2 * i)).collect();
    assert_eq!(pool.starmap(add, pairs.clone()).unwrap(), (0..50).map(|i| 3 * i).collect::<Vec<_>>());
    assert_eq!(pool.starmap_async(add, pairs).unwrap().get().unwrap().len(), 50);
    assert_eq!(pool.apply(add, (2, 3)).unwrap(), 5);
    assert_eq!(pool.apply_async(square, (7,)).unwrap().get().unwrap(), 49);
}

// POOL-05
#[test]
fn an_empty_input_is_done_at_once() {
    let pool = Pool::new(1).unwrap();
    assert!(pool.map(square, Vec::<u64>::new()).unwrap().is_empty());
    assert_eq!(pool.imap(square, Vec::<u64>::new()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(square, Vec::<u64>::new()).unwrap().count(), 0);
    let r = pool.map_async(square, Vec::<u64>::new()).unwrap();
    assert!(r.ready());
    assert!(r.get_timeout(Duration::from_millis(100)).unwrap().is_empty());
}

// POOL-06, POOL-08
#[test]
fn imap_is_in_order_and_imap_unordered_has_every_result() {
    let pool = Pool::new(2).unwrap();
    let it = pool.imap_chunked(square, 0..1000, 100).unwrap();
    assert_eq!(it.len(), 1000);
    let got: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    let got: HashSet<u64> = pool.imap_unordered(square, 0..200).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, (0..200).map(|x| x * x).collect());
}

// POOL-09
#[test]
fn zero_processes_is_refused_and_workers_have_python_names() {
    assert!(matches!(Pool::new(0), Err(Error::Io(_))));
    assert!(matches!(Pool::builder().processes(1).maxtasksperchild(0).build(), Err(Error::Io(_))));
    for (method, label) in
        [(StartMethod::ForkServer, "ForkServerPoolWorker-"), (StartMethod::Spawn, "SpawnPoolWorker-")]
    {
        let pool = Pool::builder().processes(3).start_method(method).build().unwrap();
        let names: HashSet<String> = pool.map_chunked(name_of, 0..30, 1).unwrap().into_iter().collect();
        assert!(names.iter().all(|n| n.starts_with(label)), "{names:?}");
        assert!(!names.is_empty() && names.len() <= 3, "{names:?}");
    }
}

// POOL-12
#[test]
fn a_closed_pool_takes_no_work_and_join_needs_close() {
    let pool = Pool::new(1).unwrap();
    assert!(matches!(pool.join(), Err(Error::Io(_))));
    let pending = pool.apply_async(sleep_then, (100, 1)).unwrap();
    pool.close();
    assert!(matches!(pool.apply_async(square, (1,)), Err(Error::Closed)));
    assert!(matches!(pool.map(square, 0..3), Err(Error::Closed)));
    pool.join().unwrap();
    // Work submitted before close() still ran.
    assert_eq!(pending.get().unwrap(), 1);
}

// ASYNC-01..03
#[test]
fn async_result_get_timeout_ready_and_successful() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(sleep_then, (300, 9)).unwrap();
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    let t0 = Instant::now();
    assert!(matches!(r.get_timeout(Duration::from_millis(50)), Err(Error::Timeout)));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(!r.wait_timeout(Duration::from_millis(10)));
    assert_eq!(r.get_timeout(LIMIT).unwrap(), 9);
    assert!(r.ready());
    assert_eq!(r.successful(), Some(true));
    let bad = pool.apply_async(fail_on, (3, 3)).unwrap();
    bad.wait();
    assert_eq!(bad.successful(), Some(false));
    assert!(matches!(bad.get(), Err(Error::Remote(_))));
}

// ASYNC-05
#[test]
fn imap_next_timeout_leaves_the_iterator_usable() {
    let pool = Pool::new(1).unwrap();
    let mut it = pool.imap(square, [1u64]).unwrap();
    let mut slow = pool.imap(sleep_then_one, [300u64]).unwrap();
    assert!(matches!(slow.next_timeout(Duration::from_millis(20)), Some(Err(Error::Timeout))));
    assert_eq!(slow.next_timeout(LIMIT).unwrap().unwrap(), 1);
    assert!(slow.next().is_none());
    assert_eq!(it.next().unwrap().unwrap(), 1);
}

#[multiproc::remote]
fn sleep_then_one(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    1
}

// POOL-13, POOL-14: a panic is that item's error; map gives the first
// (in input order) once everything is done, and the pool goes on.
#[test]
fn a_panic_is_that_items_error_and_the_pool_goes_on() {
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = pool.imap(fail_on_7, 0..10).unwrap().collect();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(Error::Remote(e)) => {
                assert_eq!(i, 7);
                assert!(e.message().contains("item 7 is bad"), "{e}");
                assert!(e.function().ends_with("::fail_on_7"), "{e}");
                assert!(e.location().is_some_and(|l| l.contains("tests/pool.rs")), "{e}");
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(matches!(pool.map(fail_on_7, 0..10), Err(Error::Remote(_))));
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
}

#[multiproc::remote]
fn fail_on_7(x: u64) -> u64 {
    assert_ne!(x, 7, "item {x} is bad");
    x
}

#[multiproc::remote]
fn abort_on_5(x: u64) -> u64 {
    if x == 5 {
        std::process::abort();
    }
    x
}

// POOL-25 (!): a worker that dies fails exactly its task; the pool
// replaces it and the rest of the work goes on.
#[test]
fn a_worker_that_dies_fails_exactly_its_task() {
    let pool = Pool::new(2).unwrap();
    let results = bounded("imap over a dying worker", move || {
        let results: Vec<_> = pool.imap(abort_on_5, 0..20).unwrap().collect();
        (results, pool.map(square, 0..4))
    });
    let (results, after) = results;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(Error::ProcessDied { exitcode, .. }) => {
                assert_eq!(i, 5);
                assert_eq!(*exitcode, -6, "SIGABRT");
            }
            Err(e) => panic!("item {i}: {e}"),
        }
    }
    assert!(results[5].is_err());
    assert_eq!(after.unwrap(), [0, 1, 4, 9]);
}

#[multiproc::remote]
fn sigkill_self(x: u64) -> u64 {
    if x == 1 {
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    x
}

// POOL-25 (!), with SIGKILL as the OOM killer sends it, through
// apply_async.
#[test]
fn apply_async_of_a_killed_worker_is_process_died() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(sigkill_self, (1,)).unwrap();
    match r.get_timeout(LIMIT) {
        Err(Error::ProcessDied { exitcode, .. }) => assert_eq!(exitcode, -9),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.apply(sigkill_self, (2,)).unwrap(), 2);
}

// The task timeout: a task that runs too long is killed with its worker.
#[test]
fn a_task_past_its_timeout_is_killed_and_the_rest_run() {
    let pool = Pool::builder().processes(2).task_timeout(Duration::from_millis(300)).build().unwrap();
    let t0 = Instant::now();
    let results = pool.map_async(sleep_then_one, [10, 5_000, 10, 10]).unwrap();
    let results: Vec<_> = match results.into_result() {
        Err(Error::Timeout) => pool.imap(sleep_then_one, [10, 5_000, 10, 10]).unwrap().collect(),
        other => panic!("map must report the timeout, got {other:?}"),
    };
    assert!(matches!(results[1], Err(Error::Timeout)));
    assert!(results.iter().enumerate().all(|(i, r)| i == 1 || matches!(r, Ok(1))));
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
}

// POOL-19
#[test]
fn maxtasksperchild_replaces_workers() {
    let pool = Pool::builder().processes(2).maxtasksperchild(3).build().unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_of, 0..30, 1).unwrap().into_iter().collect();
    assert!(pids.len() >= 10, "30 tasks, 3 per worker: {} workers", pids.len());
    pool.close();
    bounded("join", move || pool.join()).unwrap();
}

// POOL-19: with one task per child, close() and join() before the tasks
// finish do not hang, and every result is right.
#[test]
fn close_and_join_with_one_task_per_child_do_not_hang() {
    let pool = Pool::builder().processes(2).maxtasksperchild(1).build().unwrap();
    let r = pool.map_async(sleep_then_one, [50u64; 6]).unwrap();
    pool.close();
    let pool = bounded("join", move || {
        pool.join().unwrap();
        pool
    });
    drop(pool);
    assert_eq!(r.get().unwrap(), [1; 6]);
}

// POOL-10, POOL-11: terminate returns promptly with long tasks queued;
// what had not run is Closed. Dropping the pool does the same.
#[test]
fn terminate_and_drop_are_prompt_and_fail_what_is_left() {
    let pool = Pool::new(2).unwrap();
    let r = pool.map_async(sleep_then_one, vec![10_000u64; 100]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    pool.terminate().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(matches!(r.get_timeout(Duration::from_secs(1)), Err(Error::Closed)));
    assert!(matches!(pool.apply(square, (1,)), Err(Error::Closed)));

    let pool = Pool::new(2).unwrap();
    let r = pool.apply_async(sleep_then_one, (10_000,)).unwrap();
    let t0 = Instant::now();
    drop(pool);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(matches!(r.get_timeout(Duration::from_secs(1)), Err(Error::Closed)));
}

// POOL-02, POOL-17, ASYNC-04: callbacks run in the parent before the
// result is ready.
#[test]
fn callbacks_run_before_the_result_is_ready() {
    let pool = Pool::new(2).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (ok, err) = (seen.clone(), seen.clone());
    let r = pool
        .map_async_with(
            square,
            0..5,
            move |v: &Vec<u64>| ok.lock().unwrap().push(format!("ok {v:?} in {}", std::process::id())),
            move |e: &Error| err.lock().unwrap().push(format!("err {e}")),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), [0, 1, 4, 9, 16]);
    assert_eq!(*seen.lock().unwrap(), [format!("ok [0, 1, 4, 9, 16] in {}", std::process::id())]);

    let (ok, err) = (seen.clone(), seen.clone());
    let r = pool
        .apply_async_with(
            fail_on_7,
            (7,),
            move |v: &u64| ok.lock().unwrap().push(format!("ok {v}")),
            move |e: &Error| err.lock().unwrap().push(format!("err {}", matches!(e, Error::Remote(_)))),
        )
        .unwrap();
    assert!(r.get().is_err());
    assert_eq!(seen.lock().unwrap().last().unwrap(), "err true");

    let (ok, err) = (seen.clone(), seen.clone());
    let r = pool
        .starmap_async_with(
            add,
            [(1, 2), (3, 4)],
            move |v: &Vec<i64>| ok.lock().unwrap().push(format!("sums {v:?}")),
            move |e: &Error| err.lock().unwrap().push(format!("err {e}")),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), [3, 7]);
    assert_eq!(seen.lock().unwrap().last().unwrap(), "sums [3, 7]");
}

#[multiproc::remote]
fn set_up(tag: String) {
    // Each worker records that it ran the initializer.
    remember(tag);
}

static INIT: Mutex<Option<String>> = Mutex::new(None);

fn remember(tag: String) {
    *INIT.lock().unwrap() = Some(tag);
}

#[multiproc::remote]
fn initialized(_x: u64) -> Option<String> {
    INIT.lock().unwrap().clone()
}

#[multiproc::remote]
fn broken_init() {
    panic!("cannot initialize");
}

// POOL-22; an initializer that panics fails the work instead of respawning
// workers forever.
#[test]
fn the_initializer_runs_in_every_worker_and_its_panic_is_reported() {
    let pool = Pool::builder().processes(2).initializer(set_up, ("ready".to_owned(),)).build().unwrap();
    let tags = pool.map_chunked(initialized, 0..10, 1).unwrap();
    assert!(tags.iter().all(|t| t.as_deref() == Some("ready")), "{tags:?}");

    let pool = Pool::builder().processes(2).initializer(broken_init, ()).build().unwrap();
    let r = bounded("map with a broken initializer", move || pool.map(square, 0..10));
    match r {
        Err(Error::Remote(e)) => assert!(e.message().contains("cannot initialize"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[multiproc::remote]
fn odd_result(x: u32) -> WontDecode {
    WontDecode(x)
}

/// Encodes fine, fails to decode for odd numbers.
#[derive(Debug, Clone, PartialEq)]
struct WontDecode(u32);

impl serde::Serialize for WontDecode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for WontDecode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v % 2 == 1 { Err(serde::de::Error::custom("odd")) } else { Ok(WontDecode(v)) }
    }
}

// POOL-28 (!): a result that does not decode is an error for its task,
// never a dead pool.
#[test]
fn a_result_that_does_not_decode_fails_its_task_only() {
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = pool.imap(odd_result, 0..6).unwrap().collect();
    for (i, r) in results.iter().enumerate() {
        if i % 2 == 1 {
            assert!(matches!(r, Err(Error::Codec(_))), "{i}: {r:?}");
        } else {
            assert_eq!(r.as_ref().unwrap(), &WontDecode(i as u32));
        }
    }
    // map reports the first in input order, and the pool goes on.
    assert!(matches!(pool.map(odd_result, 0..6), Err(Error::Codec(_))));
    assert_eq!(
        pool.map_chunked(odd_result, [0, 2, 4], 2).unwrap(),
        [WontDecode(0), WontDecode(2), WontDecode(4)]
    );
    assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
}

// AsyncResult is a Future.
#[test]
fn an_async_result_can_be_awaited() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(sleep_then_one, (50,)).unwrap();
    assert_eq!(block_on(r).unwrap(), 1);
}

/// A minimal executor: polls `f`, parking the thread between wake-ups.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "the future was not ready within {LIMIT:?}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A value whose encoding always fails.
#[derive(Debug, Clone)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be encoded"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Unencodable)
    }
}

#[multiproc::remote]
fn take_unencodable(_x: Unencodable) -> u8 {
    1
}

// POOL-04: arguments that cannot be encoded are the caller's error, at
// once, and the pool stays usable.
#[test]
fn arguments_that_cannot_be_encoded_are_an_error_in_the_caller() {
    let pool = Pool::new(1).unwrap();
    let t0 = Instant::now();
    match pool.map(take_unencodable, vec![Unencodable; 3]) {
        Err(Error::Codec(msg)) => {
            assert!(msg.contains("could not encode") && msg.contains("Unencodable"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(pool.apply_async(take_unencodable, (Unencodable,)), Err(Error::Codec(_))));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(pool.map(square, 0..3).unwrap(), [0, 1, 4]);
}

// POOL-24: a large pool works.
#[test]
fn a_pool_of_64_workers_works() {
    let pool = Pool::new(64).unwrap();
    let total: u64 = pool.map(square, 0..1000).unwrap().into_iter().sum();
    assert_eq!(total, 332_833_500);
}

/// Starts a pool, reports its workers' pids, and waits to be killed.
#[multiproc::remote]
fn parent_of_a_pool(report: multiproc::Connection<Vec<u32>>) {
    let pool = Pool::new(2).unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_of, 0..20, 1).unwrap().into_iter().collect();
    report.send(pids.into_iter().collect()).unwrap();
    let _running = pool.apply_async(sleep_then_one, (3_600_000,)).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

// Killing the parent takes its pool's workers along: no orphans.
#[test]
fn sigkill_of_a_pools_parent_takes_the_workers_along() {
    let (mine, theirs) = multiproc::pipe::<Vec<u32>>().unwrap();
    let mut parent = multiproc::spawn(parent_of_a_pool, (theirs,)).unwrap();
    assert!(mine.poll(LIMIT).unwrap(), "the pool's pids did not arrive");
    let workers = mine.recv().unwrap();
    assert!(!workers.is_empty() && workers.iter().all(|&pid| !common::is_gone(pid)));
    parent.kill().unwrap();
    for pid in workers {
        assert!(common::gone_within(pid, Duration::from_secs(2)), "worker {pid} outlived its parent");
    }
    assert!(matches!(common::join(parent), Err(Error::ProcessDied { exitcode: -9, .. })));
}

/// Starts a pool, gives it work, and returns without closing it: the
/// process must still exit, with its workers gone.
#[multiproc::remote]
fn leaves_a_pool_open() -> Vec<u32> {
    let pool = Pool::new(2).unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_of, 0..20, 1).unwrap().into_iter().collect();
    let _running = pool.apply_async(sleep_then_one, (3_600_000,)).unwrap();
    std::mem::forget(pool);
    pids.into_iter().collect()
}

// POOL-21: a program that leaves a pool open exits cleanly, and its
// workers do not outlive it.
#[test]
fn a_pool_left_open_does_not_keep_its_process_alive() {
    let child = multiproc::spawn(leaves_a_pool_open, ()).unwrap();
    let workers = common::join(child).unwrap();
    for pid in workers {
        assert!(common::gone_within(pid, Duration::from_secs(2)), "worker {pid} outlived the program");
    }
}

// A progress bar (drawn only on a terminal) changes nothing else.
#[cfg(feature = "progress")]
#[test]
fn a_progress_bar_leaves_the_results_as_they_are() {
    let pool = Pool::new(2).unwrap();
    let it = pool.imap(square, 0..100).unwrap().with_progress();
    assert_eq!(it.len(), 100);
    let got: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(got, (0..100).map(|x| x * x).collect::<Vec<_>>());
}

// The pool works the same under every start method, dying workers and
// timeouts included.
#[test]
fn every_start_method_runs_the_pool() {
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .task_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        assert_eq!(
            pool.map(square, 0..100).unwrap(),
            (0..100).map(|x| x * x).collect::<Vec<_>>(),
            "{method}"
        );
        let results: Vec<_> = pool.imap(abort_on_5, 0..8).unwrap().collect();
        assert!(matches!(results[5], Err(Error::ProcessDied { .. })), "{method}: {:?}", results[5]);
        assert!(results.iter().enumerate().all(|(i, r)| i == 5 || r.as_ref().ok() == Some(&(i as u64))));
        pool.close();
        bounded("join", move || pool.join()).unwrap();
    }
}

/// An iterator whose size hint promises more items than it yields.
struct Liar(std::ops::Range<u64>);

impl Iterator for Liar {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (10, Some(10))
    }
}

// Bad input to a call is the caller's error, at once; the pool goes on.
#[test]
fn a_zero_chunk_size_or_a_lying_iterator_is_refused() {
    let pool = Pool::new(1).unwrap();
    assert!(
        matches!(pool.map_chunked(square, 0..10, 0), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput)
    );
    assert!(matches!(pool.imap_chunked(square, 0..10, 0), Err(Error::Io(_))));
    match bounded("map over a lying iterator", move || pool.map(square, Liar(0..3)).map(|_| pool)) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("size hint"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Decodes only even numbers (in the worker: the parent encodes fine).
#[derive(Debug, Clone, Copy)]
struct EvenOnly(u32);

impl serde::Serialize for EvenOnly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for EvenOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v % 2 == 1 { Err(serde::de::Error::custom("odd")) } else { Ok(EvenOnly(v)) }
    }
}

#[multiproc::remote]
fn take_even(x: EvenOnly) -> u32 {
    x.0
}

// Arguments the worker cannot decode fail their chunk as a codec error;
// the worker and the pool go on.
#[test]
fn arguments_that_do_not_decode_in_the_worker_fail_their_chunk() {
    let pool = Pool::new(1).unwrap();
    let results: Vec<_> = pool.imap(take_even, [EvenOnly(2), EvenOnly(3), EvenOnly(4)]).unwrap().collect();
    assert_eq!(results[0].as_ref().ok(), Some(&2));
    match &results[1] {
        Err(Error::Codec(msg)) => assert!(msg.contains("arguments"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(results[2].as_ref().ok(), Some(&4));
}

#[multiproc::remote]
fn length(bytes: Vec<u8>) -> usize {
    bytes.len()
}

// A worker that stops reading (SIGSTOP) while the pool sends it a task
// larger than its socket takes is killed after the send timeout, and the
// task runs on its replacement: the scheduler never hangs on a send.
#[test]
fn a_stopped_worker_is_replaced_instead_of_blocking_the_scheduler() {
    let pool = Pool::new(1).unwrap();
    let pid = pool.apply(pid_of, (0,)).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGSTOP)
        .unwrap();
    let t0 = Instant::now();
    let (len, replacement) = bounded("a task sent to a stopped worker", move || {
        let len = pool.apply(length, (vec![7u8; 4 << 20],));
        (len, pool.apply(pid_of, (0,)))
    });
    assert_eq!(len.unwrap(), 4 << 20);
    // Two send timeouts of 2 s at most (see the scheduler), and the restart.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_ne!(replacement.unwrap(), pid);
    assert!(common::gone_within(pid, Duration::from_secs(5)), "the stopped worker was not killed");
}
