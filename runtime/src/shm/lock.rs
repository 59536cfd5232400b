//! [`Lock`] and [`RLock`]: process-shared robust mutexes in a shared
//! segment of their own, held through guards.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{DATA, Segment};
use crate::error::{Error, Result};
use crate::sys::shm::Locked;

/// A lock shared by processes: Python's `multiprocessing.Lock`, held
/// through a guard that releases it when dropped.
///
/// A process that dies holding it does not block the others: the next one
/// to acquire it gets it, and its guard says the previous owner died
/// ([`LockGuard::previous_owner_died`]).
///
/// ```
/// # use std::time::Duration;
/// # fn main() -> multiproc::Result<()> {
/// let lock = multiproc::Lock::new()?;
/// let guard = lock.acquire()?;
/// assert!(lock.locked());
/// assert!(lock.try_acquire()?.is_none()); // held (by this thread, even)
/// drop(guard);
/// assert!(lock.acquire_timeout(Duration::from_millis(10))?.is_some());
/// # Ok(())
/// # }
/// ```
pub struct Lock {
    segment: Arc<Segment<u32>>,
}

/// A lock its owner can acquire again: Python's `multiprocessing.RLock`.
/// Each acquisition gives a guard; the lock is free once every guard is
/// dropped. Robust to its owner's death, as [`Lock`] is.
pub struct RLock {
    segment: Arc<Segment<u32>>,
}

/// A held [`Lock`] or [`RLock`] (one acquisition); released when dropped.
/// It stays with the thread that acquired it (it is not `Send`).
pub struct LockGuard<'a> {
    locked: Locked<'a>,
}

impl LockGuard<'_> {
    /// True if the process that held the lock before died holding it:
    /// what the lock guards may be half-updated.
    pub fn previous_owner_died(&self) -> bool {
        self.locked.owner_died()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // One acquisition less; the mutex itself is unlocked when `locked`
        // drops, right after.
        let depth = &mut self.locked.slice_mut::<u32>(DATA, 1)[0];
        *depth = depth.saturating_sub(1);
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("previous_owner_died", &self.previous_owner_died()).finish()
    }
}

/// Acquires `segment`'s mutex, waiting until `deadline` (`None`: no limit).
fn acquire(segment: &Segment<u32>, deadline: Option<Instant>) -> Result<Option<LockGuard<'_>>> {
    let Some(mut locked) = segment.map.lock(0, deadline)? else {
        return Ok(None);
    };
    let owner_died = locked.owner_died();
    let depth = &mut locked.slice_mut::<u32>(DATA, 1)[0];
    // A dead owner's count died with it.
    *depth = if owner_died { 1 } else { *depth + 1 };
    Ok(Some(LockGuard { locked }))
}

macro_rules! lock_type {
    ($name:ident, $recursive:expr, $label:expr) => {
        impl $name {
            /// A new lock, not held.
            ///
            /// # Errors
            ///
            /// [`Error::Io`] if the system gives no shared memory.
            pub fn new() -> Result<Self> {
                Ok($name { segment: Segment::create_lock($label, $recursive)? })
            }

            /// Waits for the lock and holds it until the guard is dropped.
            ///
            /// # Errors
            ///
            /// [`Error::Io`] if the system call fails, or (for a `Lock`)
            /// if this thread holds it already: waiting would never end.
            pub fn acquire(&self) -> Result<LockGuard<'_>> {
                acquire(&self.segment, None).map(|g| g.expect("no deadline, no timeout"))
            }

            /// Takes the lock if it is free: `Ok(None)` if it is held.
            ///
            /// # Errors
            ///
            /// [`Error::Io`] if the system call fails.
            pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>> {
                acquire(&self.segment, Some(Instant::now()))
            }

            /// Waits at most `timeout` for the lock: `Ok(None)` if it did
            /// not come.
            ///
            /// # Errors
            ///
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>> {
                acquire(&self.segment, Some(Instant::now() + timeout))
            }

            /// True while some thread of some process holds the lock.
            pub fn locked(&self) -> bool {
                self.segment.map.read::<u32>(DATA) > 0
            }
        }

        sync_handle!($name, 1, true);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("locked", &self.locked()).finish()
            }
        }
    };
}

lock_type!(Lock, false, "multiproc-lock");
lock_type!(RLock, true, "multiproc-rlock");

impl Segment<u32> {
    /// A segment holding a mutex and its acquisition count.
    fn create_lock(label: &str, recursive: bool) -> Result<Arc<Self>> {
        let segment = Segment::create(label, &[0], 1, true)?;
        if recursive {
            segment.map.init_mutex(0, true).map_err(Error::Io)?;
        }
        Ok(segment)
    }
}
