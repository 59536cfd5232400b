//! [`Condition`]: a robust lock and a futex-backed sequence number in a
//! shared segment of their own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::{DATA, Segment};
use crate::error::Result;
use crate::sys::shm::Locked;

/// The words after the lock: a sequence number that every notify bumps,
/// and the number of waiters sleeping on it.
const SEQ: usize = DATA;
const SLEEPERS: usize = DATA + 4;

/// A condition variable shared by processes, with its own lock: Python's
/// `multiprocessing.Condition`. [`acquire`](Condition::acquire) gives a
/// guard that holds the lock; the guard waits (releasing the lock
/// meanwhile) and notifies.
///
/// ```
/// #[multiproc::remote]
/// fn produce(c: multiproc::Condition, ready: multiproc::Value<u8>) {
///     let mut g = c.acquire().unwrap();
///     ready.set(1);
///     g.notify_all();
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let (c, ready) = (multiproc::Condition::new()?, multiproc::Value::new(0u8)?);
/// let mut g = c.acquire()?;
/// let p = multiproc::spawn(produce, (c.clone(), ready.clone()))?;
/// assert!(g.wait_for(|| ready.get() == 1, None)?);
/// drop(g);
/// p.join()?;
/// # Ok(())
/// # }
/// ```
pub struct Condition {
    segment: Arc<Segment<u32>>,
}

impl Condition {
    /// A new condition, its lock free.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the system gives no shared
    /// memory.
    pub fn new() -> Result<Self> {
        Ok(Condition { segment: Segment::create("multiproc-condition", &[0, 0], 2, true)? })
    }

    /// Waits for the lock and holds it until the guard is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the system call fails, or this
    /// thread holds the lock already.
    pub fn acquire(&self) -> Result<ConditionGuard<'_>> {
        let locked = self.segment.map.lock(0, None)?.expect("no deadline, no timeout");
        Ok(ConditionGuard { segment: &self.segment, locked: Some(locked) })
    }

    /// Takes the lock if it is free: `Ok(None)` if it is held.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Condition::acquire).
    pub fn try_acquire(&self) -> Result<Option<ConditionGuard<'_>>> {
        self.acquire_until(Instant::now())
    }

    /// Waits at most `timeout` for the lock: `Ok(None)` if it did not come.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Condition::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ConditionGuard<'_>>> {
        self.acquire_until(Instant::now() + timeout)
    }

    fn acquire_until(&self, deadline: Instant) -> Result<Option<ConditionGuard<'_>>> {
        let locked = self.segment.map.lock(0, Some(deadline))?;
        Ok(locked.map(|locked| ConditionGuard { segment: &self.segment, locked: Some(locked) }))
    }
}

/// The lock of a [`Condition`], held.
pub struct ConditionGuard<'a> {
    segment: &'a Segment<u32>,
    /// `None` only while waiting.
    locked: Option<Locked<'a>>,
}

impl ConditionGuard<'_> {
    /// Releases the lock, waits for a notify, and takes the lock again.
    /// Like any condition variable, it may return without a notify: check
    /// what you wait for, or use [`wait_for`](ConditionGuard::wait_for).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if waiting or locking again fails.
    pub fn wait(&mut self) -> Result<()> {
        self.wait_until(None).map(drop)
    }

    /// Like [`wait`](ConditionGuard::wait), for at most `timeout`; false if
    /// the time ran out.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionGuard::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Waits until `predicate` is true, for at most `timeout` (`None`: no
    /// limit), and returns its last value: Python's `wait_for`.
    ///
    /// # Errors
    ///
    /// As [`wait`](ConditionGuard::wait).
    pub fn wait_for(
        &mut self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if predicate() {
                return Ok(true);
            }
            if !self.wait_until(deadline)? {
                return Ok(predicate());
            }
        }
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let map = &self.segment.map;
        let seq = map.atomic(SEQ).load(SeqCst);
        map.atomic(SLEEPERS).fetch_add(1, SeqCst);
        drop(self.locked.take());
        let woke = map.wait(SEQ, seq, deadline);
        map.atomic(SLEEPERS).fetch_sub(1, SeqCst);
        self.locked = Some(map.lock(0, None)?.expect("no deadline, no timeout"));
        Ok(woke?)
    }

    /// Wakes up to `n` processes or threads waiting on the condition.
    pub fn notify(&mut self, n: u32) {
        let map = &self.segment.map;
        map.atomic(SEQ).fetch_add(1, SeqCst);
        if map.atomic(SLEEPERS).load(SeqCst) > 0 {
            map.wake(SEQ, n);
        }
    }

    /// Wakes every process and thread waiting on the condition.
    pub fn notify_all(&mut self) {
        self.notify(u32::MAX);
    }

    /// True if the process that held the lock before died holding it.
    pub fn previous_owner_died(&self) -> bool {
        self.locked.as_ref().is_some_and(Locked::owner_died)
    }
}

sync_handle!(Condition, 2, true);

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}
