//! Locks, semaphores, conditions, events, barriers, values and arrays held
//! by a manager (MGR-18 and the LOCK-, SEM-, COND-, EVT-, BAR- behaviours
//! through proxies), with the faults where Python's manager deadlocks.

mod common;

use std::time::{Duration, Instant};

use multiproc::{
    ArrayProxy, BarrierProxy, ConditionProxy, Error, EventProxy, LockProxy, Manager, SemaphoreProxy,
    ValueProxy,
};

use common::{LIMIT, join};

#[multiproc::remote]
fn try_lock(lock: LockProxy) -> bool {
    lock.try_acquire().unwrap().is_some()
}

#[multiproc::remote]
fn hold_forever(lock: LockProxy, held: EventProxy) {
    let _guard = lock.acquire().unwrap();
    held.set().unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

// LOCK-01, LOCK-03 through a manager: held here is held for a child.
#[test]
fn a_lock_held_here_is_held_for_a_child() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let guard = lock.acquire().unwrap();
    assert!(!guard.previous_owner_died());
    assert!(lock.is_locked().unwrap());
    assert!(!join(multiproc::spawn(try_lock, (lock.clone(),)).unwrap()).unwrap());
    assert!(matches!(lock.try_acquire(), Err(Error::Io(_))), "the same thread again: an error, not a hang");
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let lock = &lock;
        let other = s.spawn(move || lock.acquire_timeout(Duration::from_millis(100)).unwrap().is_some());
        assert!(!other.join().unwrap(), "another thread waits, then gives up");
    });
    assert!(t0.elapsed() >= Duration::from_millis(100));
    guard.release().unwrap();
    assert!(!lock.is_locked().unwrap());
    assert!(join(multiproc::spawn(try_lock, (lock.clone(),)).unwrap()).unwrap());
}

// LOCK-02 through a manager: a reentrant lock counts its acquisitions.
#[test]
fn an_rlock_is_reentrant() {
    let manager = Manager::start().unwrap();
    let rlock = manager.rlock().unwrap();
    let a = rlock.acquire().unwrap();
    let b = rlock.acquire().unwrap();
    let c = rlock.try_acquire().unwrap().expect("the holder may take it again");
    drop(c);
    drop(b);
    assert!(rlock.is_locked().unwrap());
    drop(a);
    assert!(!rlock.is_locked().unwrap());
}

// Python's manager deadlocks when a holder dies; here the next acquirer
// gets the lock at once and learns that its holder died.
#[test]
fn a_lock_whose_holder_is_killed_goes_to_the_next() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let held = manager.event().unwrap();
    let mut holder = multiproc::spawn(hold_forever, (lock.clone(), held.clone())).unwrap();
    assert!(held.wait_timeout(LIMIT).unwrap());
    assert!(lock.try_acquire().unwrap().is_none());
    holder.kill().unwrap();
    let t0 = Instant::now();
    let guard = lock.acquire_timeout(LIMIT).unwrap().expect("the lock after its holder died");
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert!(guard.previous_owner_died());
    assert!(join(holder).is_err());
}

#[multiproc::remote]
fn take_two(sem: SemaphoreProxy) -> (bool, bool) {
    (sem.try_acquire().unwrap(), sem.try_acquire().unwrap())
}

// SEM-* through a manager: units across processes; a bounded semaphore
// refuses a release over its first value.
#[test]
fn semaphores_count_across_processes() {
    let manager = Manager::start().unwrap();
    let sem = manager.semaphore(1).unwrap();
    assert_eq!(join(multiproc::spawn(take_two, (sem.clone(),)).unwrap()).unwrap(), (true, false));
    assert_eq!(sem.value().unwrap(), 0);
    let t0 = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(100));
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value().unwrap(), 2, "a plain semaphore goes over");
    let bounded = manager.bounded_semaphore(1).unwrap();
    bounded.acquire().unwrap();
    bounded.release().unwrap();
    assert!(matches!(bounded.release(), Err(Error::Io(_))));
    assert_eq!(bounded.value().unwrap(), 1);
}

#[multiproc::remote]
fn set_later(ev: EventProxy) {
    std::thread::sleep(Duration::from_millis(100));
    ev.set().unwrap();
}

// EVT-* through a manager.
#[test]
fn an_event_set_in_a_child_wakes_the_parent() {
    let manager = Manager::start().unwrap();
    let ev = manager.event().unwrap();
    assert!(!ev.is_set().unwrap());
    assert!(!ev.wait_timeout(Duration::from_millis(50)).unwrap());
    let child = multiproc::spawn(set_later, (ev.clone(),)).unwrap();
    ev.wait().unwrap();
    assert!(ev.is_set().unwrap());
    join(child).unwrap();
    ev.clear().unwrap();
    assert!(!ev.is_set().unwrap());
}

#[multiproc::remote]
fn wait_for_count(cond: ConditionProxy, count: ValueProxy<u32>) -> bool {
    let guard = cond.acquire().unwrap();
    cond.wait_for(&guard, Some(LIMIT), || count.get().unwrap() >= 3).unwrap()
}

// COND-* through a manager: a waiter in a child is woken by notifies from
// here, and wait_for returns the predicate's last value.
#[test]
fn a_condition_across_processes() {
    let manager = Manager::start().unwrap();
    let cond = manager.condition().unwrap();
    let count = manager.value(0u32).unwrap();
    let waiter = multiproc::spawn(wait_for_count, (cond.clone(), count.clone())).unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        let guard = cond.acquire().unwrap();
        count.add(1).unwrap();
        cond.notify_all(&guard).unwrap();
    }
    assert!(join(waiter).unwrap());

    let guard = cond.acquire().unwrap();
    let t0 = Instant::now();
    assert!(!cond.wait_timeout(&guard, Duration::from_millis(100)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(!cond.wait_for(&guard, Some(Duration::from_millis(50)), || false).unwrap());
    let inner = cond.acquire().unwrap();
    drop(inner);
    drop(guard);
    // Without the lock, waiting and notifying are errors.
    let other = manager.condition().unwrap();
    let not_mine = other.acquire().unwrap();
    assert!(matches!(cond.wait_timeout(&not_mine, Duration::from_millis(10)), Err(Error::Io(_))));
    assert!(matches!(cond.notify(&not_mine, 1), Err(Error::Io(_))));
}

#[multiproc::remote]
fn party(b: BarrierProxy) -> usize {
    b.wait().unwrap()
}

#[multiproc::remote]
fn party_result(b: BarrierProxy) -> String {
    match b.wait() {
        Ok(i) => format!("index {i}"),
        Err(e) => format!("{e:?}"),
    }
}

// BAR-* through a manager: distinct indices; a timeout, an abort and a
// killed party break it for everyone; reset makes it new.
#[test]
fn a_barrier_across_processes() {
    let manager = Manager::start().unwrap();
    let b = manager.barrier(3).unwrap();
    let children: Vec<_> = (0..2).map(|_| multiproc::spawn(party, (b.clone(),)).unwrap()).collect();
    let mut indices = vec![b.wait().unwrap()];
    indices.extend(children.into_iter().map(|c| join(c).unwrap()));
    indices.sort_unstable();
    assert_eq!(indices, vec![0, 1, 2]);

    let t0 = Instant::now();
    assert!(matches!(b.wait_timeout(Duration::from_millis(100)), Err(Error::BrokenBarrier)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(b.is_broken().unwrap());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset().unwrap();
    assert!(!b.is_broken().unwrap());

    // A party killed while it waits breaks the barrier for the one left.
    let waiting = multiproc::spawn(party_result, (b.clone(),)).unwrap();
    let mut victim = multiproc::spawn(party_result, (b.clone(),)).unwrap();
    let deadline = Instant::now() + LIMIT;
    while b.n_waiting().unwrap() < 2 {
        assert!(Instant::now() < deadline, "the parties never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap();
    assert_eq!(join(waiting).unwrap(), "BrokenBarrier");
    assert!(join(victim).is_err());

    b.reset().unwrap();
    let waiting = multiproc::spawn(party_result, (b.clone(),)).unwrap();
    while b.n_waiting().unwrap() < 1 {
        std::thread::sleep(Duration::from_millis(10));
    }
    b.abort().unwrap();
    assert_eq!(join(waiting).unwrap(), "BrokenBarrier");
    assert!(matches!(manager.barrier(0), Err(Error::Io(_))));
}

#[multiproc::remote]
fn add_to(v: ValueProxy<i64>, a: ArrayProxy<u32>, n: u32) {
    for _ in 0..n {
        v.add(1).unwrap();
        v.update(|x| x + 1).unwrap();
    }
    a.set(1, 7).unwrap();
}

// MGR-18: values and arrays across processes; add and update lose nothing.
#[test]
fn values_and_arrays_across_processes() {
    let manager = Manager::start().unwrap();
    let v = manager.value(0i64).unwrap();
    let a = manager.array([1u32, 2, 3]).unwrap();
    let children: Vec<_> =
        (0..4).map(|_| multiproc::spawn(add_to, (v.clone(), a.clone(), 100)).unwrap()).collect();
    for c in children {
        join(c).unwrap();
    }
    assert_eq!(v.get().unwrap(), 800);
    v.set(-5).unwrap();
    assert_eq!(v.get().unwrap(), -5);
    assert_eq!(a.to_vec().unwrap(), vec![1, 7, 3]);
    assert_eq!(a.len().unwrap(), 3);
    assert_eq!(a.get(2).unwrap(), 3);
    assert!(matches!(a.get(3), Err(Error::Remote(_))));
    assert!(matches!(a.set(5, 0), Err(Error::Remote(_))));
    let text = manager.value(String::from("a")).unwrap();
    assert_eq!(text.update(|s| s + "b").unwrap(), "ab");
    let small = manager.value(u8::MAX).unwrap();
    assert!(matches!(small.add(1), Err(Error::Io(_))), "overflow");
    assert_eq!(small.get().unwrap(), u8::MAX);
}

#[multiproc::remote]
fn eight_threads_take_their_first_locks(locks: Vec<LockProxy>) -> usize {
    let all_held = std::sync::Barrier::new(locks.len());
    std::thread::scope(|s| {
        let threads: Vec<_> = locks
            .iter()
            .map(|lock| {
                let all_held = &all_held;
                s.spawn(move || {
                    let guard = lock.acquire().unwrap();
                    all_held.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    lock.is_locked().unwrap() && guard.release().is_ok()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap_or(false)).filter(|held| *held).count()
    })
}

// Threads of one process taking their first locks at once each open the
// process's session with the server; the server frees what the process
// holds only when its last session ends, not when a spare one does.
#[test]
fn threads_taking_their_first_locks_at_once_keep_them() {
    let manager = Manager::start().unwrap();
    for _ in 0..5 {
        let locks: Vec<LockProxy> = (0..8).map(|_| manager.lock().unwrap()).collect();
        let held = join(multiproc::spawn(eight_threads_take_their_first_locks, (locks,)).unwrap()).unwrap();
        assert_eq!(held, 8, "a thread lost a lock it held");
    }
}

#[multiproc::remote]
fn set_and_put_later(ev: EventProxy, b: BarrierProxy, cond: ConditionProxy) {
    std::thread::sleep(Duration::from_millis(100));
    ev.set().unwrap();
    b.wait().unwrap();
    let guard = cond.acquire().unwrap();
    cond.notify_all(&guard).unwrap();
}

// A timeout too long to count is no limit, not a server that panics (and
// leaves a barrier with a phantom party).
#[test]
fn timeouts_too_long_to_count_are_no_limit() {
    let manager = Manager::start().unwrap();
    let (ev, b, cond, lock) = (
        manager.event().unwrap(),
        manager.barrier(2).unwrap(),
        manager.condition().unwrap(),
        manager.lock().unwrap(),
    );
    let guard = cond.acquire().unwrap();
    let child = multiproc::spawn(set_and_put_later, (ev.clone(), b.clone(), cond.clone())).unwrap();
    assert!(ev.wait_timeout(Duration::MAX).unwrap());
    assert!(b.wait_timeout(Duration::MAX).is_ok());
    assert!(cond.wait_timeout(&guard, Duration::MAX).unwrap());
    drop(guard);
    join(child).unwrap();
    assert!(lock.acquire_timeout(Duration::MAX).unwrap().is_some());
    assert_eq!(b.n_waiting().unwrap(), 0);
    assert!(!b.is_broken().unwrap());
}

// COND: notify(1) wakes one waiter of two; a waiter that timed out takes
// no notify from the others.
#[test]
fn notify_wakes_as_many_as_asked_and_a_timed_out_waiter_takes_none() {
    let manager = Manager::start().unwrap();
    let cond = manager.condition().unwrap();
    {
        let guard = cond.acquire().unwrap();
        assert!(!cond.wait_timeout(&guard, Duration::from_millis(20)).unwrap());
    }
    let woken = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let guard = cond.acquire().unwrap();
                if cond.wait_timeout(&guard, LIMIT).unwrap() {
                    woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(200));
        {
            let guard = cond.acquire().unwrap();
            cond.notify(&guard, 1).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1, "notify(1) woke another number");
        let guard = cond.acquire().unwrap();
        cond.notify_all(&guard).unwrap();
    });
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A guard of another lock is refused.
    let other = manager.condition().unwrap();
    let not_this = other.acquire().unwrap();
    assert!(matches!(cond.notify(&not_this, 1), Err(Error::Io(_))));
}

#[multiproc::remote]
fn take_a_unit(sem: SemaphoreProxy) -> bool {
    sem.acquire().unwrap();
    true
}

// A semaphore has no owner: a process that dies with a unit keeps it, and
// one killed while it waits takes none (a unit taken for it goes back).
#[test]
fn semaphore_units_and_killed_processes() {
    let manager = Manager::start().unwrap();
    let sem = manager.semaphore(1).unwrap();
    assert!(join(multiproc::spawn(take_a_unit, (sem.clone(),)).unwrap()).unwrap());
    assert_eq!(sem.value().unwrap(), 0, "the dead process's unit is not given back");
    let mut waiter = multiproc::spawn(take_a_unit, (sem.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    waiter.kill().unwrap();
    assert!(join(waiter).is_err());
    sem.release().unwrap();
    assert!(sem.acquire_timeout(Duration::from_secs(2)).unwrap(), "the killed waiter took the unit");
}

// BAR: a reset while parties wait breaks it for them, and the barrier is
// whole again for the next round.
#[test]
fn a_reset_breaks_the_waiting_parties_only() {
    let manager = Manager::start().unwrap();
    let b = manager.barrier(2).unwrap();
    let waiting = multiproc::spawn(party_result, (b.clone(),)).unwrap();
    while b.n_waiting().unwrap() < 1 {
        std::thread::sleep(Duration::from_millis(10));
    }
    b.reset().unwrap();
    assert_eq!(join(waiting).unwrap(), "BrokenBarrier");
    assert_eq!(b.n_waiting().unwrap(), 0);
    let next = multiproc::spawn(party_result, (b.clone(),)).unwrap();
    let mine = b.wait().unwrap();
    assert_eq!(join(next).unwrap(), format!("index {}", 1 - mine));
}
