//! Locks, semaphores, conditions, events, barriers, values and arrays
//! held by the manager, for processes that reach it by address.
//!
//! Between a parent and its children, the shared-memory primitives
//! ([`Lock`](crate::Lock), [`Value`](crate::Value), ...) are much faster;
//! these are what a remote manager's clients share. A lock is held by a
//! thread of a process; when the process ends, the server frees what it
//! held (its session connection closes), and the next holder learns that
//! the previous one died, where Python's manager deadlocks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::{self, ObjectRef};
use super::dict::{Number, NumberKind};
use super::protocol::{Holder, comparable};
use super::server::{Access, Caller, Served, Waited, args, no_method, ret};
use crate::codec::{ByteBuf, Bytes, Encoded};
use crate::error::{Error, Result};

pub(crate) const LOCK: &str = "lock";
pub(crate) const RLOCK: &str = "rlock";
pub(crate) const SEMAPHORE: &str = "semaphore";
pub(crate) const CONDITION: &str = "condition";
pub(crate) const EVENT: &str = "event";
pub(crate) const BARRIER: &str = "barrier";
pub(crate) const VALUE: &str = "value";
pub(crate) const ARRAY: &str = "array";

// --- Locks.

/// A held manager lock: released when dropped (a release that fails, the
/// manager being gone, is ignored then; [`release`](ProxyLockGuard::release)
/// reports it). Not `Send`: the thread that acquired the lock releases it.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ProxyLockGuard<'a> {
    object: &'a ObjectRef,
    holder: Holder,
    previous_owner_died: bool,
    released: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for ProxyLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyLockGuard").field("object", self.object).finish_non_exhaustive()
    }
}

impl ProxyLockGuard<'_> {
    /// Whether the lock was freed by the death of the process that held
    /// it, rather than released: what it guarded may be half-changed.
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }

    /// Releases the lock now.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.object.call("release", &self.holder)
    }
}

impl Drop for ProxyLockGuard<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.object.call::<_, ()>("release", &self.holder);
        }
    }
}

fn acquire(object: &ObjectRef, timeout: Option<Duration>) -> Result<Option<ProxyLockGuard<'_>>> {
    let holder = object.server.holder()?;
    let got: Option<bool> = object.call("acquire", &(holder, timeout))?;
    Ok(got.map(|previous_owner_died| ProxyLockGuard {
        object,
        holder,
        previous_owner_died,
        released: false,
        _not_send: PhantomData,
    }))
}

/// A wait with no time limit that came back without the lock: a server
/// that does not follow the protocol.
fn no_timeout() -> Error {
    Error::Codec("the manager gave up waiting where there is no time limit".to_owned())
}

macro_rules! lock_methods {
    ($name:ident) => {
        impl $name {
            /// Acquires the lock, waiting for it.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone; [`Error::Io`] if
            /// this thread holds the lock already and it is not reentrant.
            pub fn acquire(&self) -> Result<ProxyLockGuard<'_>> {
                acquire(&self.object, None)?.ok_or_else(no_timeout)
            }

            /// Acquires the lock if it is free now.
            ///
            /// # Errors
            ///
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<Option<ProxyLockGuard<'_>>> {
                acquire(&self.object, Some(Duration::ZERO))
            }

            /// Acquires the lock, waiting at most `timeout`.
            ///
            /// # Errors
            ///
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ProxyLockGuard<'_>>> {
                acquire(&self.object, Some(timeout))
            }

            /// Whether any thread holds the lock.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone.
            pub fn is_locked(&self) -> Result<bool> {
                self.object.call("locked", &())
            }
        }
    };
}

proxy!(
    /// A proxy of a lock held by a [`Manager`](crate::Manager) (Python's
    /// `manager.Lock()`).
    LockProxy,
    LOCK
);
lock_methods!(LockProxy);

proxy!(
    /// A proxy of a reentrant lock held by a [`Manager`](crate::Manager)
    /// (Python's `manager.RLock()`): the thread that holds it may acquire
    /// it again, and holds it until every guard is dropped.
    RLockProxy,
    RLOCK
);
lock_methods!(RLockProxy);

/// Who holds a lock, and how many times.
#[derive(Default)]
struct Ownership {
    owner: Option<Holder>,
    count: u32,
    owner_died: bool,
}

impl Ownership {
    /// Takes the lock for `holder` if it can now: `Some(previous owner
    /// died)`, or `None` if another holds it.
    fn try_take(&mut self, holder: Holder, reentrant: bool) -> Result<Option<bool>> {
        match self.owner {
            None => {
                self.owner = Some(holder);
                self.count = 1;
                Ok(Some(std::mem::take(&mut self.owner_died)))
            }
            Some(owner) if owner == holder && reentrant => {
                self.count += 1;
                Ok(Some(false))
            }
            Some(owner) if owner == holder => {
                Err(Error::invalid_input("this thread holds the lock already; it would wait for itself"))
            }
            Some(_) => Ok(None),
        }
    }

    fn release(&mut self, holder: Holder) -> Result<()> {
        if self.owner != Some(holder) {
            return Err(Error::invalid_input("release of a lock this thread does not hold"));
        }
        self.count -= 1;
        if self.count == 0 {
            self.owner = None;
        }
        Ok(())
    }

    /// Lets go of the lock however many times `holder` holds it; how many
    /// that was.
    fn release_all(&mut self, holder: Holder) -> Result<u32> {
        if self.owner != Some(holder) {
            return Err(Error::invalid_input("the condition's lock is not held by this thread"));
        }
        self.owner = None;
        Ok(std::mem::take(&mut self.count))
    }

    /// Frees the lock if a thread of `process` holds it.
    fn process_gone(&mut self, process: u64) -> bool {
        if self.owner.is_some_and(|o| o.process == process) {
            *self = Ownership { owner: None, count: 0, owner_died: true };
            return true;
        }
        false
    }
}

pub(crate) struct LockState {
    inner: Mutex<Ownership>,
    changed: Condvar,
    reentrant: bool,
}

impl LockState {
    pub(crate) fn new(reentrant: bool) -> LockState {
        LockState { inner: Mutex::new(Ownership::default()), changed: Condvar::new(), reentrant }
    }

    fn lock(&self) -> MutexGuard<'_, Ownership> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Served for LockState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "acquire" | "release" | "locked").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        match method {
            "acquire" => {
                let (holder, timeout): (Holder, Option<Duration>) = args(a)?;
                let take = |o: &mut Ownership| o.try_take(holder, self.reentrant).transpose();
                match caller.wait_for(self.lock(), &self.changed, timeout, take) {
                    (_, Waited::Ready(died)) => ret(&Some(died?)),
                    (_, Waited::TimedOut) => ret(&None::<bool>),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            "release" => {
                self.lock().release(args(a)?)?;
                self.changed.notify_all();
                ret(&())
            }
            "locked" => ret(&self.lock().owner.is_some()),
            _ => Err(no_method(LOCK, method)),
        }
    }

    fn process_gone(&self, process: u64) {
        if self.lock().process_gone(process) {
            self.changed.notify_all();
        }
    }
}

// --- Semaphores.

proxy!(
    /// A proxy of a semaphore held by a [`Manager`](crate::Manager)
    /// (Python's `manager.Semaphore(n)`, or `BoundedSemaphore(n)` from
    /// [`Manager::bounded_semaphore`](crate::Manager::bounded_semaphore)).
    /// A semaphore has no owner: the death of a process that acquired it
    /// does not release it.
    SemaphoreProxy,
    SEMAPHORE
);

impl SemaphoreProxy {
    /// Takes one unit, waiting for one.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_until(None).map(drop)
    }

    /// Takes one unit if there is one now; whether it did.
    ///
    /// # Errors
    ///
    /// As [`acquire`](SemaphoreProxy::acquire).
    pub fn try_acquire(&self) -> Result<bool> {
        self.acquire_until(Some(Duration::ZERO))
    }

    /// Takes one unit, waiting at most `timeout`; whether it did.
    ///
    /// # Errors
    ///
    /// As [`acquire`](SemaphoreProxy::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.acquire_until(Some(timeout))
    }

    fn acquire_until(&self, timeout: Option<Duration>) -> Result<bool> {
        self.object.call("acquire", &timeout)
    }

    /// Gives one unit back.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the semaphore is bounded and this would take it
    /// over its first value; [`Error::Closed`] if the manager is gone.
    pub fn release(&self) -> Result<()> {
        self.object.call("release", &())
    }

    /// The units free now.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn value(&self) -> Result<u64> {
        self.object.call("value", &())
    }
}

pub(crate) struct SemaphoreState {
    value: Mutex<u64>,
    changed: Condvar,
    bound: Option<u64>,
}

impl SemaphoreState {
    pub(crate) fn new((value, bounded): (u64, bool)) -> SemaphoreState {
        SemaphoreState { value: Mutex::new(value), changed: Condvar::new(), bound: bounded.then_some(value) }
    }
}

impl Served for SemaphoreState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "acquire" | "release" | "value").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        let lock = || self.value.lock().unwrap_or_else(PoisonError::into_inner);
        match method {
            "acquire" => {
                let timeout: Option<Duration> = args(a)?;
                let take = |v: &mut u64| (*v > 0).then(|| *v -= 1);
                match caller.wait_for(lock(), &self.changed, timeout, take) {
                    (_, Waited::Ready(())) => ret(&true),
                    (_, Waited::TimedOut) => ret(&false),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            "release" => {
                let mut value = lock();
                if self.bound.is_some_and(|bound| *value >= bound) {
                    return Err(Error::invalid_input("semaphore or lock released too many times"));
                }
                *value = value
                    .checked_add(1)
                    .ok_or_else(|| Error::invalid_input("a semaphore's value overflows"))?;
                self.changed.notify_all();
                ret(&())
            }
            "value" => ret(&*lock()),
            _ => Err(no_method(SEMAPHORE, method)),
        }
    }

    fn reply_lost(&self, method: &str, reply: Encoded) {
        // A unit taken for a caller that is gone: a semaphore has no owner
        // to free it later, so it goes back now.
        if method == "acquire" && crate::codec::decode::<bool>(reply).unwrap_or(false) {
            *self.value.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            self.changed.notify_all();
        }
    }
}

// --- Events.

proxy!(
    /// A proxy of an event held by a [`Manager`](crate::Manager) (Python's
    /// `manager.Event()`).
    EventProxy,
    EVENT
);

impl EventProxy {
    /// Sets the flag and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn set(&self) -> Result<()> {
        self.object.call("set", &true)
    }

    /// Clears the flag.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn clear(&self) -> Result<()> {
        self.object.call("set", &false)
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn is_set(&self) -> Result<bool> {
        self.object.call("is_set", &())
    }

    /// Waits until the flag is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn wait(&self) -> Result<()> {
        self.object.call::<_, bool>("wait", &None::<Duration>).map(drop)
    }

    /// Waits at most `timeout` for the flag; whether it is set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.object.call("wait", &Some(timeout))
    }
}

pub(crate) struct EventState {
    set: Mutex<bool>,
    changed: Condvar,
}

impl EventState {
    pub(crate) fn new() -> EventState {
        EventState { set: Mutex::new(false), changed: Condvar::new() }
    }
}

impl Served for EventState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "set" | "is_set" | "wait").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        let lock = || self.set.lock().unwrap_or_else(PoisonError::into_inner);
        match method {
            "set" => {
                *lock() = args(a)?;
                self.changed.notify_all();
                ret(&())
            }
            "is_set" => ret(&*lock()),
            "wait" => {
                let timeout: Option<Duration> = args(a)?;
                match caller.wait_for(lock(), &self.changed, timeout, |set| set.then_some(())) {
                    (_, Waited::Ready(())) => ret(&true),
                    (_, Waited::TimedOut) => ret(&false),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            _ => Err(no_method(EVENT, method)),
        }
    }
}

// --- Conditions.

proxy!(
    /// A proxy of a condition variable held by a
    /// [`Manager`](crate::Manager), with its own reentrant lock (Python's
    /// `manager.Condition()`). [`wait`](ConditionProxy::wait) and the
    /// notifies need the lock held by this thread.
    ConditionProxy,
    CONDITION
);

impl ConditionProxy {
    /// Acquires the condition's lock.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn acquire(&self) -> Result<ProxyLockGuard<'_>> {
        acquire(&self.object, None)?.ok_or_else(no_timeout)
    }

    /// Acquires the condition's lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`acquire`](ConditionProxy::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ProxyLockGuard<'_>>> {
        acquire(&self.object, Some(timeout))
    }

    /// Releases the lock, waits for a notify, and acquires the lock again.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if this thread does not hold the lock;
    /// [`Error::Closed`] if the manager is gone.
    pub fn wait(&self, guard: &ProxyLockGuard<'_>) -> Result<()> {
        self.wait_until(guard, None).map(drop)
    }

    /// As [`wait`](ConditionProxy::wait), for at most `timeout`; whether a
    /// notify came. The lock is held again either way.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    pub fn wait_timeout(&self, guard: &ProxyLockGuard<'_>, timeout: Duration) -> Result<bool> {
        self.wait_until(guard, Some(timeout))
    }

    /// Waits until `predicate()` is true, for at most `timeout` (`None`:
    /// no limit), and returns its last value.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    pub fn wait_for(
        &self,
        guard: &ProxyLockGuard<'_>,
        timeout: Option<Duration>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<bool> {
        let end = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = match end {
                Some(end) => match end.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(predicate()),
                },
                None => None,
            };
            self.wait_until(guard, left)?;
        }
    }

    fn wait_until(&self, guard: &ProxyLockGuard<'_>, timeout: Option<Duration>) -> Result<bool> {
        self.object.call("wait", &(self.holder(guard)?, timeout))
    }

    /// The holder of `guard`, which must be a guard of this condition.
    fn holder(&self, guard: &ProxyLockGuard<'_>) -> Result<Holder> {
        if guard.object != &self.object {
            return Err(Error::invalid_input("the guard is of another lock than the condition's"));
        }
        Ok(guard.holder)
    }

    /// Wakes up to `n` waiters.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    pub fn notify(&self, guard: &ProxyLockGuard<'_>, n: usize) -> Result<()> {
        self.object.call("notify", &(self.holder(guard)?, n as u64))
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionProxy::wait).
    pub fn notify_all(&self, guard: &ProxyLockGuard<'_>) -> Result<()> {
        self.notify(guard, usize::MAX)
    }
}

#[derive(Default)]
struct Cond {
    lock: Ownership,
    next_ticket: u64,
    /// Waiters not notified yet, oldest first.
    waiting: VecDeque<u64>,
    /// Waiters notified and not yet back.
    notified: HashSet<u64>,
}

pub(crate) struct ConditionState {
    inner: Mutex<Cond>,
    changed: Condvar,
}

impl ConditionState {
    pub(crate) fn new() -> ConditionState {
        ConditionState { inner: Mutex::new(Cond::default()), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Cond> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Served for ConditionState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "acquire" | "release" | "wait" | "notify").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        match method {
            "acquire" => {
                let (holder, timeout): (Holder, Option<Duration>) = args(a)?;
                let take = |c: &mut Cond| c.lock.try_take(holder, true).ok().flatten();
                match caller.wait_for(self.lock(), &self.changed, timeout, take) {
                    (_, Waited::Ready(died)) => ret(&Some(died)),
                    (_, Waited::TimedOut) => ret(&None::<bool>),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            "release" => {
                self.lock().lock.release(args(a)?)?;
                self.changed.notify_all();
                ret(&())
            }
            "wait" => {
                let (holder, timeout): (Holder, Option<Duration>) = args(a)?;
                let mut cond = self.lock();
                // Let go of the lock, however many times it is held.
                let count = cond.lock.release_all(holder)?;
                let ticket = cond.next_ticket;
                cond.next_ticket += 1;
                cond.waiting.push_back(ticket);
                self.changed.notify_all();
                let woken = |c: &mut Cond| c.notified.remove(&ticket).then_some(());
                let (mut cond, waited) = caller.wait_for(cond, &self.changed, timeout, woken);
                // Not notified (a notify takes a ticket out of `waiting`
                // under the same lock, so none is lost here).
                cond.waiting.retain(|t| *t != ticket);
                if let Waited::Gone = waited {
                    return Err(Error::Closed);
                }
                // Take the lock back, as held before.
                let take = |c: &mut Cond| c.lock.try_take(holder, true).ok().flatten();
                match caller.wait_for(cond, &self.changed, None, take) {
                    (mut cond, Waited::Ready(_)) => {
                        cond.lock.count = count;
                        ret(&matches!(waited, Waited::Ready(())))
                    }
                    (_, _) => Err(Error::Closed),
                }
            }
            "notify" => {
                let (holder, n): (Holder, u64) = args(a)?;
                let mut cond = self.lock();
                if cond.lock.owner != Some(holder) {
                    return Err(Error::invalid_input("the condition's lock is not held by this thread"));
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(cond.waiting.len());
                let woken: Vec<u64> = cond.waiting.drain(..n).collect();
                cond.notified.extend(woken);
                self.changed.notify_all();
                ret(&())
            }
            _ => Err(no_method(CONDITION, method)),
        }
    }

    fn process_gone(&self, process: u64) {
        if self.lock().lock.process_gone(process) {
            self.changed.notify_all();
        }
    }
}

// --- Barriers.

proxy!(
    /// A proxy of a barrier held by a [`Manager`](crate::Manager) (Python's
    /// `manager.Barrier(n)`). A party that dies while it waits, or a wait
    /// that times out, breaks the barrier for every party.
    BarrierProxy,
    BARRIER
);

impl BarrierProxy {
    /// Waits until every party has come; this party's index, distinct
    /// among them.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or gets broken (aborted,
    /// reset, timed out, or a party died); [`Error::Closed`] if the
    /// manager is gone.
    pub fn wait(&self) -> Result<usize> {
        self.object.call::<_, u64>("wait", &None::<Duration>).map(|i| i as usize)
    }

    /// As [`wait`](BarrierProxy::wait), breaking the barrier if the others
    /// have not come within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`wait`](BarrierProxy::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.object.call::<_, u64>("wait", &Some(timeout)).map(|i| i as usize)
    }

    /// Breaks the barrier: waiting parties, and later ones, get
    /// [`Error::BrokenBarrier`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn abort(&self) -> Result<()> {
        self.object.call("abort", &())
    }

    /// Makes the barrier new again; parties waiting now get
    /// [`Error::BrokenBarrier`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn reset(&self) -> Result<()> {
        self.object.call("reset", &())
    }

    /// The parties waiting now.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn n_waiting(&self) -> Result<usize> {
        self.object.call::<_, u64>("n_waiting", &()).map(|n| n as usize)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn is_broken(&self) -> Result<bool> {
        self.object.call("broken", &())
    }
}

struct Round {
    parties: u64,
    /// Parties waiting in this generation.
    count: u64,
    generation: u64,
    broken: bool,
    /// Generations that ended with parties still to wake: whether by a
    /// reset (rather than by every party coming), and how many are still
    /// to wake.
    ended: HashMap<u64, (bool, u64)>,
}

impl Round {
    /// Ends this generation, by every party coming or by a reset.
    fn end(&mut self, reset: bool) {
        let waiting = if reset { self.count } else { self.parties - 1 };
        if waiting > 0 {
            self.ended.insert(self.generation, (reset, waiting));
        }
        self.generation += 1;
        self.count = 0;
    }

    /// For a party of `generation`, which has ended: whether by a reset.
    fn woken(&mut self, generation: u64) -> bool {
        let Some((reset, left)) = self.ended.get_mut(&generation) else { return true };
        let reset = *reset;
        *left -= 1;
        if *left == 0 {
            self.ended.remove(&generation);
        }
        reset
    }
}

pub(crate) struct BarrierState {
    inner: Mutex<Round>,
    changed: Condvar,
}

impl BarrierState {
    pub(crate) fn new(parties: u64) -> Result<BarrierState> {
        if parties == 0 {
            return Err(Error::invalid_input("a barrier needs at least one party"));
        }
        let round = Round { parties, count: 0, generation: 0, broken: false, ended: HashMap::new() };
        Ok(BarrierState { inner: Mutex::new(round), changed: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn break_now(&self, round: &mut Round) {
        round.broken = true;
        self.changed.notify_all();
    }
}

impl Served for BarrierState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "wait" | "abort" | "reset" | "n_waiting" | "broken").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        match method {
            "wait" => {
                let timeout: Option<Duration> = args(a)?;
                let mut round = self.lock();
                if round.broken {
                    return Err(Error::BrokenBarrier);
                }
                let index = round.count;
                let generation = round.generation;
                round.count += 1;
                if round.count == round.parties {
                    round.end(false);
                    self.changed.notify_all();
                    return ret(&index);
                }
                let over = |r: &mut Round| (r.broken || r.generation != generation).then_some(());
                let (mut round, waited) = caller.wait_for(round, &self.changed, timeout, over);
                if round.generation != generation {
                    return if round.woken(generation) { Err(Error::BrokenBarrier) } else { ret(&index) };
                }
                // Broken, timed out, or the party went: it waits no more, and
                // (the last two) nobody waits for it.
                round.count -= 1;
                if !round.broken {
                    self.break_now(&mut round);
                }
                Err(if let Waited::Gone = waited { Error::Closed } else { Error::BrokenBarrier })
            }
            "abort" => {
                self.break_now(&mut self.lock());
                ret(&())
            }
            "reset" => {
                let mut round = self.lock();
                if round.count > 0 {
                    round.end(true);
                }
                round.broken = false;
                self.changed.notify_all();
                ret(&())
            }
            "n_waiting" => ret(&self.lock().count),
            "broken" => ret(&self.lock().broken),
            _ => Err(no_method(BARRIER, method)),
        }
    }
}

// --- Values and arrays.

proxy!(
    /// A proxy of a value held by a [`Manager`](crate::Manager) (Python's
    /// `manager.Value(typecode, v)`), of any serde type.
    ValueProxy<T>,
    VALUE
);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn get(&self) -> Result<T> {
        self.object.call("get", &())
    }

    /// Sets the value.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone; [`Error::Codec`] if the
    /// value does not encode.
    pub fn set(&self, value: T) -> Result<()> {
        self.object.call("set", &client::value(&value)?)
    }

    /// Adds `delta` in one atomic step; the sum.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the sum overflows (the value stays as it was);
    /// [`Error::Closed`] if the manager is gone.
    pub fn add(&self, delta: T) -> Result<T>
    where
        T: Number,
    {
        self.object.call("add", &(T::KIND, client::value(&delta)?))
    }

    /// Replaces the value with `f(value)` atomically, however many
    /// processes update it at once (`f` runs again if another update came
    /// in between); the value set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn update(&self, mut f: impl FnMut(T) -> T) -> Result<T> {
        let mut current: Encoded = self.object.call("get_encoded", &())?;
        loop {
            let bytes = current.bytes.clone();
            let new = f(client::decode(current)?);
            let outcome: std::result::Result<(), Encoded> =
                self.object.call("compare_and_swap", &(Bytes(&bytes), client::value(&new)?))?;
            match outcome {
                Ok(()) => return Ok(new),
                Err(actual) => current = actual,
            }
        }
    }
}

pub(crate) struct ValueState {
    value: Mutex<Encoded>,
}

impl ValueState {
    pub(crate) fn new(value: Encoded) -> ValueState {
        ValueState { value: Mutex::new(value) }
    }
}

impl Served for ValueState {
    fn access(&self, method: &str) -> Option<Access> {
        matches!(method, "get" | "get_encoded" | "set" | "add" | "compare_and_swap").then_some(Access::Shared)
    }

    fn call(&self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        let mut value = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        match method {
            // The value as it is kept: its own encoding.
            "get" => Ok(Encoded {
                bytes: value.bytes.clone(),
                fds: value.fds.iter().map(std::os::fd::OwnedFd::try_clone).collect::<std::io::Result<_>>()?,
            }),
            "get_encoded" => ret(&*value),
            "set" => {
                *value = args(a)?;
                ret(&())
            }
            "add" => {
                let (kind, delta): (NumberKind, Encoded) = args(a)?;
                let sum = super::dict::add_as(kind, Some(&value), delta)?;
                let reply = Encoded { bytes: sum.bytes.clone(), fds: Vec::new() };
                *value = sum;
                Ok(reply)
            }
            "compare_and_swap" => {
                let (ByteBuf(expected), new): (ByteBuf, Encoded) = args(a)?;
                if comparable(&value)? != expected {
                    return ret(&Err::<(), &Encoded>(&value));
                }
                *value = new;
                ret(&Ok::<(), &Encoded>(()))
            }
            _ => Err(no_method(VALUE, method)),
        }
    }
}

proxy!(
    /// A proxy of a fixed-length array held by a
    /// [`Manager`](crate::Manager) (Python's `manager.Array(typecode,
    /// seq)`). An index out of range panics in the server, which answers
    /// that call with [`Error::Remote`] and goes on serving.
    ArrayProxy<T>,
    ARRAY
);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// The item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] if `index` is out of range; [`Error::Closed`] if
    /// the manager is gone.
    pub fn get(&self, index: usize) -> Result<T> {
        client::decode(self.object.call("get", &(index as u64))?)
    }

    /// Sets the item at `index`.
    ///
    /// # Errors
    ///
    /// As [`get`](ArrayProxy::get).
    pub fn set(&self, index: usize, item: T) -> Result<()> {
        self.object.call("set", &(index as u64, client::value(&item)?))
    }

    /// The number of items.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn len(&self) -> Result<usize> {
        self.object.len()
    }

    /// Whether the array has no items.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item.
    ///
    /// # Errors
    ///
    /// As [`get`](ArrayProxy::get).
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let items: Vec<Encoded> = self.object.call("to_vec", &())?;
        items.into_iter().map(client::decode).collect()
    }
}
