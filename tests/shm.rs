//! Shared memory: Value, Array, RawValue, RawArray across processes, and a
//! lock whose holder dies (SHM-*, LOCK-* of
//! ../shared/spec/cpython-conformance.md).

mod common;

use std::time::{Duration, Instant};

use multiproc::connection::Connection;
use multiproc::{Array, Context, Error, RawArray, RawValue, Remote, StartMethod, Value};

use common::{LIMIT, join};

#[multiproc::remote]
fn double_all(n: Value<f64>, a: Array<i32>, rv: RawValue<u64>, ra: RawArray<u8>) {
    n.set(n.get() * 2.0);
    for i in 0..a.len() {
        a.set(i, a.get(i) * 2);
    }
    rv.set(rv.get() * 2);
    ra.copy_from_slice(&ra.to_vec().iter().map(|b| b * 2).collect::<Vec<_>>());
}

#[test]
fn children_of_every_start_method_change_the_same_memory() {
    for method in StartMethod::ALL {
        eprintln!("method {method}");
        let n = Value::new(1.25f64).unwrap();
        let a = Array::from_slice(&[1, 2, 3]).unwrap();
        let rv = RawValue::new(21u64).unwrap();
        let ra = RawArray::from_slice(&[1u8, 2, 3, 4]).unwrap();
        let p =
            Context::new(method).spawn(double_all, (n.clone(), a.clone(), rv.clone(), ra.clone())).unwrap();
        join(p).unwrap();
        assert_eq!(n.get(), 2.5, "{method}");
        assert_eq!(a.to_vec(), [2, 4, 6], "{method}");
        assert_eq!(rv.get(), 42, "{method}");
        assert_eq!(ra.to_vec(), [2, 4, 6, 8], "{method}");
    }
}

#[multiproc::remote]
fn increment(n: Value<i64>, times: u32) {
    for _ in 0..times {
        *n.lock() += 1;
    }
}

// The lock makes read-modify-write atomic across processes.
#[test]
fn increments_under_the_lock_are_never_lost() {
    let n = Value::new(0i64).unwrap();
    let workers: Vec<_> = (0..4).map(|_| multiproc::spawn(increment, (n.clone(), 5_000)).unwrap()).collect();
    for p in workers {
        join(p).unwrap();
    }
    assert_eq!(n.get(), 20_000);
}

#[test]
fn arrays_behave_like_slices() {
    let a = Array::<i32>::new(4).unwrap();
    assert_eq!(a.to_vec(), [0; 4]);
    assert_eq!(a.len(), 4);
    a.copy_from_slice(&[4, 3, 2, 1]);
    a.lock().sort();
    assert_eq!(a.to_vec(), [1, 2, 3, 4]);
    let out_of_bounds = std::panic::catch_unwind(|| a.get(4));
    assert!(out_of_bounds.is_err());
    let empty = RawArray::<u8>::new(0).unwrap();
    assert!(empty.is_empty() && empty.to_vec().is_empty());
}

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

#[multiproc::remote]
fn shift(p: Value<Point>) {
    let mut g = p.lock();
    g.x += 1.0;
    g.y -= 1.0;
}

#[test]
fn a_repr_c_struct_can_be_shared() {
    let p = Value::new(Point { x: 1.0, y: 2.0 }).unwrap();
    join(multiproc::spawn(shift, (p.clone(),)).unwrap()).unwrap();
    assert_eq!(p.get(), Point { x: 2.0, y: 1.0 });
}

/// Takes the value's lock, changes the value halfway, says so, and waits
/// to be killed while holding it.
#[multiproc::remote]
fn die_holding(n: Value<i64>, report: Connection<u32>) {
    let mut g = n.lock();
    *g = -1;
    drop(g);
    let mut g = n.lock();
    *g = 99;
    report.send(std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
    drop(g);
}

// A process that dies holding the lock does not deadlock the others.
#[test]
fn a_lock_whose_holder_died_goes_to_the_next_and_says_so() {
    let n = Value::new(0i64).unwrap();
    let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
    let mut holder = multiproc::spawn(die_holding, (n.clone(), theirs)).unwrap();
    assert!(mine.poll(LIMIT).unwrap(), "the holder never reported");
    mine.recv().unwrap();
    holder.kill().unwrap();
    assert!(matches!(join(holder), Err(Error::ProcessDied { exitcode: -9, .. })));

    let (tx, rx) = std::sync::mpsc::channel();
    let n2 = n.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let g = n2.lock();
        let _ = tx.send((g.previous_owner_died(), *g, t0.elapsed()));
    });
    let (died, value, waited) =
        rx.recv_timeout(LIMIT).expect("the lock of a dead holder was never handed over");
    assert!(died, "the next owner learns that the previous one died");
    assert_eq!(value, -1, "the dead holder's unwritten change is not there");
    assert!(waited < Duration::from_secs(5));
    // And it is an ordinary lock again.
    n.set(5);
    assert_eq!(n.get(), 5);
    assert!(!n.lock().previous_owner_died());
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn dev_shm() -> usize {
    std::fs::read_dir("/dev/shm").map(|d| d.count()).unwrap_or(0)
}

/// In a process of its own (nothing else opens fds there): makes shared
/// memory, hands it to a grandchild, drops it; returns the fds open and the
/// entries of /dev/shm before and after.
#[multiproc::remote]
fn count_what_is_left() -> ((usize, usize), (usize, usize)) {
    // The first child starts the fork server, whose fds stay.
    join(multiproc::spawn(increment_u8, (Value::new(0u8).unwrap(),)).unwrap()).unwrap();
    let (fds, shm) = (open_fds(), dev_shm());
    {
        let v = Value::new(1u8).unwrap();
        let a = Array::<u64>::new(1 << 16).unwrap();
        let ra = RawArray::<u8>::new(100).unwrap();
        join(multiproc::spawn(increment_u8, (v.clone(),)).unwrap()).unwrap();
        assert_eq!(v.get(), 2);
        drop((a, ra));
    }
    ((fds, open_fds()), (shm, dev_shm()))
}

#[test]
fn shared_memory_leaves_nothing_in_dev_shm_nor_open_fds() {
    let ((fds_before, fds_after), (shm_before, shm_after)) =
        join(multiproc::spawn(count_what_is_left, ()).unwrap()).unwrap();
    assert_eq!(fds_after, fds_before, "an fd was left open");
    assert_eq!(shm_after, shm_before, "something was left in /dev/shm");
}

#[multiproc::remote]
fn increment_u8(n: Value<u8>) {
    *n.lock() += 1;
}

// LOCK-01, LOCK-03
#[test]
fn a_lock_is_held_once_and_says_so() {
    let lock = multiproc::Lock::new().unwrap();
    assert!(!lock.locked());
    let g = lock.acquire().unwrap();
    assert!(lock.locked());
    assert!(lock.try_acquire().unwrap().is_none(), "held: try_acquire gives nothing");
    assert!(lock.acquire_timeout(Duration::from_millis(20)).unwrap().is_none());
    assert!(matches!(lock.acquire(), Err(Error::Io(_))), "acquiring it again on this thread would never end");
    drop(g);
    assert!(!lock.locked());
    assert!(lock.try_acquire().unwrap().is_some());
}

// LOCK-02, LOCK-03
#[test]
fn an_rlock_counts_its_owners_acquisitions() {
    let lock = multiproc::RLock::new().unwrap();
    let a = lock.acquire().unwrap();
    let b = lock.acquire().unwrap();
    let c = lock.try_acquire().unwrap().expect("its owner may take it again");
    drop((a, b));
    assert!(lock.locked(), "one acquisition is still held");
    let other = lock.clone();
    let from_another_thread =
        std::thread::spawn(move || other.try_acquire().unwrap().is_some()).join().unwrap();
    assert!(!from_another_thread, "another thread cannot take it");
    drop(c);
    assert!(!lock.locked());
}

#[multiproc::remote]
fn hold_for(lock: multiproc::Lock, ms: u64, report: Connection<bool>) {
    let _g = lock.acquire().unwrap();
    report.send(true).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
}

// LOCK-03: a lock held by another process is seen as held, and waited for.
#[test]
fn a_lock_held_by_another_process_is_waited_for() {
    let lock = multiproc::Lock::new().unwrap();
    let (mine, theirs) = multiproc::pipe::<bool>().unwrap();
    let child = multiproc::spawn(hold_for, (lock.clone(), 300, theirs)).unwrap();
    assert!(mine.poll(LIMIT).unwrap());
    mine.recv().unwrap();
    assert!(lock.locked());
    assert!(lock.try_acquire().unwrap().is_none());
    let t0 = Instant::now();
    let g = lock.acquire_timeout(LIMIT).unwrap().expect("released when the child is done");
    assert!(t0.elapsed() >= Duration::from_millis(100), "{:?}", t0.elapsed());
    assert!(!g.previous_owner_died());
    drop(g);
    join(child).unwrap();
}

/// Takes the lock, says so, and waits to be killed while holding it.
#[multiproc::remote]
fn die_holding_the_lock(lock: multiproc::Lock, report: Connection<bool>) {
    let _g = lock.acquire().unwrap();
    report.send(true).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

// A process SIGKILLed while holding a Lock does not deadlock the others.
#[test]
fn a_lock_whose_holder_was_killed_is_handed_on() {
    let lock = multiproc::Lock::new().unwrap();
    let (mine, theirs) = multiproc::pipe::<bool>().unwrap();
    let mut holder = multiproc::spawn(die_holding_the_lock, (lock.clone(), theirs)).unwrap();
    assert!(mine.poll(LIMIT).unwrap());
    mine.recv().unwrap();
    holder.kill().unwrap();
    let g = lock.acquire_timeout(LIMIT).unwrap().expect("the dead holder's lock is handed on");
    assert!(g.previous_owner_died());
    assert!(lock.locked());
    drop(g);
    assert!(!lock.locked());
    assert!(matches!(join(holder), Err(Error::ProcessDied { exitcode: -9, .. })));
}

// SEM-01, SEM-04
#[test]
fn a_semaphore_counts_without_bound() {
    let sem = multiproc::Semaphore::new(2).unwrap();
    assert_eq!(sem.value(), 2);
    sem.acquire().unwrap();
    assert!(sem.try_acquire().unwrap());
    assert_eq!(sem.value(), 0);
    assert!(!sem.try_acquire().unwrap());
    for expected in 1..=4 {
        sem.release().unwrap();
        assert_eq!(sem.value(), expected);
    }
}

// SEM-02
#[test]
fn a_bounded_semaphore_refuses_to_go_over() {
    let sem = multiproc::BoundedSemaphore::new(2).unwrap();
    sem.acquire().unwrap();
    sem.release().unwrap();
    match sem.release() {
        Err(Error::Io(e)) => assert!(e.to_string().contains("released too many times"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sem.value(), 2);
}

// SEM-03
#[test]
fn an_empty_semaphore_times_out_after_its_timeout() {
    let sem = multiproc::Semaphore::new(0).unwrap();
    let t0 = Instant::now();
    assert!(!sem.try_acquire().unwrap());
    assert!(!sem.acquire_timeout(Duration::ZERO).unwrap());
    assert!(t0.elapsed() < Duration::from_millis(50));
    let t0 = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(100) && t0.elapsed() < Duration::from_secs(2));
}

#[multiproc::remote]
fn release_after(sem: multiproc::Semaphore, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    sem.release().unwrap();
}

// SEM-05: acquired in one process, released in another, waking a waiter.
#[test]
fn a_release_in_another_process_wakes_the_waiter() {
    let sem = multiproc::Semaphore::new(0).unwrap();
    let child = multiproc::spawn(release_after, (sem.clone(), 100)).unwrap();
    let t0 = Instant::now();
    assert!(sem.acquire_timeout(LIMIT).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(50));
    join(child).unwrap();
}

#[multiproc::remote]
fn set_after(ev: multiproc::Event, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    ev.set();
}

// EVT-01
#[test]
fn an_event_is_waited_for_across_processes() {
    let ev = multiproc::Event::new().unwrap();
    assert!(!ev.is_set());
    let t0 = Instant::now();
    assert!(!ev.wait_timeout(Duration::ZERO));
    assert!(!ev.wait_timeout(Duration::from_millis(100)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    ev.set();
    assert!(ev.is_set() && ev.wait_timeout(Duration::ZERO));
    ev.wait();
    ev.clear();
    assert!(!ev.is_set());
    let child = multiproc::spawn(set_after, (ev.clone(), 100)).unwrap();
    assert!(ev.wait_timeout(LIMIT), "the child's set() wakes the wait");
    join(child).unwrap();
}

#[multiproc::remote]
fn wait_once(c: multiproc::Condition, woken: Value<u32>) {
    let mut g = c.acquire().unwrap();
    g.wait().unwrap();
    drop(g);
    woken.update(|n| *n += 1);
}

/// Waits until `woken` reads `expected` (for at most LIMIT), then a little
/// longer, and returns what it reads then.
fn settles_at(woken: &Value<u32>, expected: u32) -> u32 {
    let deadline = Instant::now() + LIMIT;
    while woken.get() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    woken.get()
}

// COND-01, COND-02, COND-03: notify(n) wakes n waiters, threads and
// processes alike; notify_all wakes the rest.
#[test]
fn notify_wakes_as_many_waiters_as_asked() {
    let c = multiproc::Condition::new().unwrap();
    let woken = Value::new(0u32).unwrap();
    let children: Vec<_> =
        (0..3).map(|_| multiproc::spawn(wait_once, (c.clone(), woken.clone())).unwrap()).collect();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (c, woken) = (c.clone(), woken.clone());
            std::thread::spawn(move || wait_once.call((c, woken)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300)); // all six asleep
    assert_eq!(woken.get(), 0);
    c.acquire().unwrap().notify(1);
    assert_eq!(settles_at(&woken, 1), 1);
    c.acquire().unwrap().notify(2);
    assert_eq!(settles_at(&woken, 3), 3);
    c.acquire().unwrap().notify_all();
    assert_eq!(settles_at(&woken, 6), 6);
    c.acquire().unwrap().notify(3); // nobody waits: nothing happens
    for p in children {
        join(p).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
}

// COND-04, COND-06, COND-07
#[test]
fn condition_waits_time_out_and_wait_for_gives_the_last_value() {
    let c = multiproc::Condition::new().unwrap();
    let mut g = c.acquire().unwrap();
    let t0 = Instant::now();
    assert!(!g.wait_timeout(Duration::ZERO).unwrap());
    assert!(!g.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let mut calls = 0;
    assert!(
        !g.wait_for(
            || {
                calls += 1;
                false
            },
            Some(Duration::from_millis(50))
        )
        .unwrap()
    );
    assert!(calls >= 2, "the predicate is asked again at the deadline");
    assert!(g.wait_for(|| true, Some(Duration::ZERO)).unwrap());
    // Another thread finds the lock held: try gives up at once, a timeout
    // after its time.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(c.try_acquire().unwrap().is_none());
            let t0 = Instant::now();
            assert!(c.acquire_timeout(Duration::from_millis(50)).unwrap().is_none());
            assert!(t0.elapsed() >= Duration::from_millis(50));
        });
    });
    drop(g);
    assert!(c.acquire_timeout(Duration::from_millis(50)).unwrap().is_some());
}

#[multiproc::remote]
fn count_up(c: multiproc::Condition, n: Value<u32>) {
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(20));
        let mut g = c.acquire().unwrap();
        n.update(|v| *v += 1);
        g.notify_all();
    }
}

// COND-05
#[test]
fn wait_for_sees_another_processes_notifications() {
    let c = multiproc::Condition::new().unwrap();
    let n = Value::new(0u32).unwrap();
    let mut g = c.acquire().unwrap();
    let child = multiproc::spawn(count_up, (c.clone(), n.clone())).unwrap();
    assert!(g.wait_for(|| n.get() == 4, Some(LIMIT)).unwrap());
    drop(g);
    join(child).unwrap();
}

#[multiproc::remote]
fn barrier_rounds(b: multiproc::Barrier, rounds: u32, log: Connection<(u32, u32)>) -> Vec<usize> {
    (0..rounds)
        .map(|round| {
            log.send((round, std::process::id())).unwrap();
            b.wait().unwrap()
        })
        .collect()
}

// BAR-01, BAR-02, BAR-08: parties pass in lockstep, each round handing out
// the indices 0..n once each.
#[test]
fn barrier_parties_pass_in_lockstep_with_distinct_indices() {
    let b = multiproc::Barrier::new(4).unwrap();
    let rounds = 50;
    let (logs, children): (Vec<_>, Vec<_>) = (0..3)
        .map(|_| {
            let (mine, theirs) = multiproc::pipe::<(u32, u32)>().unwrap();
            (mine, multiproc::spawn(barrier_rounds, (b.clone(), rounds, theirs)).unwrap())
        })
        .unzip();
    let mut mine_indices = Vec::new();
    for round in 0..rounds {
        // Every party reported this round before anyone reports the next.
        for log in &logs {
            assert!(log.poll(LIMIT).unwrap());
            assert_eq!(log.recv().unwrap().0, round);
        }
        mine_indices.push(b.wait_timeout(LIMIT).unwrap());
    }
    let mut per_round: Vec<Vec<usize>> = (0..rounds as usize).map(|r| vec![mine_indices[r]]).collect();
    for p in children {
        for (r, i) in join(p).unwrap().into_iter().enumerate() {
            per_round[r].push(i);
        }
    }
    for mut indices in per_round {
        indices.sort();
        assert_eq!(indices, [0, 1, 2, 3]);
    }
    assert_eq!((b.parties(), b.n_waiting(), b.broken()), (4, 0, false));
}

#[multiproc::remote]
fn wait_at(b: multiproc::Barrier, timeout_ms: u64) -> bool {
    matches!(b.wait_timeout(Duration::from_millis(timeout_ms)), Err(multiproc::Error::BrokenBarrier))
}

// BAR-04, BAR-05: abort breaks the barrier for the waiting and the later;
// reset makes it usable again.
#[test]
fn abort_and_reset_break_the_waiters() {
    let b = multiproc::Barrier::new(3).unwrap();
    let waiters: Vec<_> = (0..2).map(|_| multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap()).collect();
    let deadline = Instant::now() + LIMIT;
    while b.n_waiting() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.abort();
    for w in waiters {
        assert!(join(w).unwrap(), "a waiter was not told the barrier broke");
    }
    assert!(b.broken());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset();
    assert!(!b.broken());
    // Reset while two wait: they are sent away broken; the next round works.
    let waiters: Vec<_> = (0..2).map(|_| multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap()).collect();
    while b.n_waiting() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.reset();
    for w in waiters {
        assert!(join(w).unwrap());
    }
    let single = multiproc::Barrier::new(1).unwrap();
    assert_eq!(single.wait().unwrap(), 0);
    assert_eq!(single.wait().unwrap(), 0); // BAR-07
}

// BAR-06: a party that times out breaks the barrier for every party.
#[test]
fn a_timeout_breaks_the_barrier_for_everyone() {
    let b = multiproc::Barrier::new(3).unwrap();
    let patient = multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap();
    let t0 = Instant::now();
    assert!(matches!(b.wait_timeout(Duration::from_millis(200)), Err(Error::BrokenBarrier)));
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(join(patient).unwrap(), "the patient party is sent away broken too");
    assert!(b.broken());
}

/// Holds the barrier without ever waiting on it, says so, and sleeps.
#[multiproc::remote]
fn hold_barrier(_b: multiproc::Barrier, ready: Connection<u32>) {
    ready.send(std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Takes the barrier and lets go of it.
#[multiproc::remote]
fn look_at_barrier(b: multiproc::Barrier) -> u32 {
    b.parties()
}

/// Ends the process while a handle to the barrier is still alive.
#[multiproc::remote]
fn exit_holding_barrier(b: multiproc::Barrier) {
    std::mem::forget(b);
    std::process::exit(0);
}

fn until_waiting(b: &multiproc::Barrier, n: u32) {
    let deadline = Instant::now() + LIMIT;
    while b.n_waiting() < n {
        assert!(Instant::now() < deadline, "{n} parties never waited");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Where CPython waits forever: a party killed before it arrives breaks the
/// barrier for the parties waiting for it, at once rather than at their
/// timeout; after a reset, the barrier works again.
#[test]
fn a_party_killed_before_it_arrives_breaks_the_barrier() {
    let b = multiproc::Barrier::new(3).unwrap();
    let waiter = multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap();
    let (ours, theirs) = multiproc::pipe::<u32>().unwrap();
    let mut doomed = multiproc::spawn(hold_barrier, (b.clone(), theirs)).unwrap();
    assert!(ours.poll(LIMIT).unwrap(), "the party never started");
    assert_eq!(ours.recv().unwrap(), doomed.pid());
    until_waiting(&b, 1);
    let t0 = Instant::now();
    doomed.kill().unwrap();
    assert!(join(waiter).unwrap(), "the waiting party was not told the barrier broke");
    assert!(t0.elapsed() < Duration::from_secs(10), "broken only by the timeout, after {:?}", t0.elapsed());
    assert!(b.broken());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset();
    let others: Vec<_> = (0..2).map(|_| multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap()).collect();
    b.wait_timeout(LIMIT).unwrap();
    for other in others {
        assert!(!join(other).unwrap(), "a party of the round after the reset was broken");
    }
}

#[test]
fn a_party_killed_while_waiting_breaks_the_barrier() {
    let b = multiproc::Barrier::new(3).unwrap();
    let mut waiters: Vec<_> =
        (0..2).map(|_| multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap()).collect();
    until_waiting(&b, 2);
    let t0 = Instant::now();
    waiters[0].kill().unwrap();
    assert!(join(waiters.pop().unwrap()).unwrap(), "the other waiting party was not told the barrier broke");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(b.broken());
}

#[test]
fn a_process_that_exits_holding_the_barrier_breaks_it() {
    let b = multiproc::Barrier::new(2).unwrap();
    let waiter = multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap();
    until_waiting(&b, 1);
    let ended = join(multiproc::spawn(exit_holding_barrier, (b.clone(),)).unwrap());
    assert!(matches!(ended, Err(Error::ProcessDied { exitcode: 0, .. })), "{ended:?}");
    assert!(join(waiter).unwrap(), "the waiting party was not told the barrier broke");
}

/// A process that took a handle and dropped it was no party: the barrier
/// stays whole after it ends.
#[test]
fn a_process_that_lets_go_of_the_barrier_does_not_break_it() {
    let b = multiproc::Barrier::new(2).unwrap();
    for _ in 0..3 {
        assert_eq!(join(multiproc::spawn(look_at_barrier, (b.clone(),)).unwrap()).unwrap(), 2);
    }
    let other = multiproc::spawn(wait_at, (b.clone(), 20_000)).unwrap();
    b.wait_timeout(LIMIT).unwrap();
    assert!(!join(other).unwrap());
    assert!(!b.broken());
}

/// Makes shared objects of every kind, hands some to a grandchild, says
/// so, and waits to be killed.
#[multiproc::remote]
fn hold_shared_memory(report: Connection<u32>) {
    let v = Value::new(1u64).unwrap();
    let _others = (
        Array::<u8>::new(1 << 20).unwrap(),
        multiproc::Lock::new().unwrap(),
        multiproc::Event::new().unwrap(),
        multiproc::Barrier::new(2).unwrap(),
    );
    let grandchild = multiproc::spawn(increment_u8_forever, (Value::new(0u8).unwrap(), v)).unwrap();
    report.send(grandchild.pid()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

#[multiproc::remote]
fn increment_u8_forever(n: Value<u8>, _keep: Value<u64>) {
    loop {
        n.update(|v| *v = v.wrapping_add(1));
        std::thread::sleep(Duration::from_millis(10));
    }
}

// SIGKILL of a process holding shared memory leaves nothing behind: no
// file in /dev/shm, no process.
#[test]
fn sigkill_of_a_holder_leaves_nothing_behind() {
    let shm_before = dev_shm();
    let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
    let mut holder = multiproc::spawn(hold_shared_memory, (theirs,)).unwrap();
    assert!(mine.poll(LIMIT).unwrap());
    let grandchild = mine.recv().unwrap();
    holder.kill().unwrap();
    assert!(common::gone_within(grandchild, Duration::from_secs(2)), "the grandchild outlived its parent");
    assert!(matches!(join(holder), Err(Error::ProcessDied { exitcode: -9, .. })));
    assert_eq!(dev_shm(), shm_before, "something was left in /dev/shm");
}

// Bad input and self-deadlock are reported, never waited on.
#[test]
fn a_barrier_of_none_and_a_value_locked_twice_are_refused() {
    assert!(
        matches!(multiproc::Barrier::new(0), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput)
    );
    let v = Value::new(1u8).unwrap();
    let held = v.lock();
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v.get()));
    assert!(again.is_err(), "locking a value this thread holds panics instead of waiting forever");
    drop(held);
    assert_eq!(v.get(), 1);
}
