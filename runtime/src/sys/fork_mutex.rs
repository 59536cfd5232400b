//! A mutex for the runtime's own global state that a forked child can reset.

use std::cell::UnsafeCell;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::process::ForkedChild;

/// A `Mutex` that can be replaced wholesale in a freshly forked child.
///
/// `fork` copies only the calling thread. If another thread held this lock
/// at that moment, the child's copy stays locked forever; and whatever state
/// it guarded may be half-updated. [`reinit_in_child`] forgets the copied
/// mutex and its contents and puts a fresh one in its place, as CPython's
/// `_at_fork_reinit` does for its locks.
///
/// [`reinit_in_child`]: ForkMutex::reinit_in_child
#[derive(Debug)]
pub(crate) struct ForkMutex<T> {
    inner: UnsafeCell<Mutex<T>>,
}

// SAFETY: outside `reinit_in_child` the cell is only read (`&Mutex<T>`),
// and `Mutex<T>` is `Sync` for `T: Send`; `reinit_in_child` runs only where
// no other thread exists.
unsafe impl<T: Send> Sync for ForkMutex<T> {}

impl<T> ForkMutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        ForkMutex { inner: UnsafeCell::new(Mutex::new(value)) }
    }

    /// Locks the mutex. A panic of an earlier holder does not poison it:
    /// the runtime's state is kept consistent at every await point.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: shared access; only `reinit_in_child` writes the cell.
        let mutex = unsafe { &*self.inner.get() };
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the mutex and its contents with a fresh, unlocked one,
    /// leaking the old contents (their invariants may be broken, and any fds
    /// in them stay open).
    ///
    /// Takes the proof that this is a freshly forked child: it has a single
    /// thread, and the frames that might hold a guard of this mutex belong
    /// to `fork_with`'s caller, which the child never returns to.
    pub(crate) fn reinit_in_child(&self, _proof: &ForkedChild, value: T) {
        // SAFETY: the child has one thread, running the closure given to
        // `fork_with`; no other thread can observe the cell, and no guard
        // obtained before the fork is ever used again (the child never
        // returns from `fork_with`).
        let old = unsafe { std::ptr::replace(self.inner.get(), Mutex::new(value)) };
        std::mem::forget(old);
    }
}
