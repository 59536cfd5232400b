//! [`Semaphore`], [`BoundedSemaphore`] and [`Event`]: counters and flags in
//! a shared segment, waited on with futexes (no polling).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::Segment;
use crate::error::{Error, Result};

/// Where each word lives in the segment: the counter or flag, the number
/// of processes sleeping on it (so that waking costs nothing when nobody
/// sleeps), and a semaphore's bound.
const VALUE: usize = 0;
const SLEEPERS: usize = 4;
const BOUND: usize = 8;

/// Sleeps on `VALUE` while it is `expected`, until `deadline`; counts
/// itself among the sleepers meanwhile. False if the time ran out.
fn sleep_while(segment: &Segment<u32>, expected: u32, deadline: Option<Instant>) -> Result<bool> {
    let map = &segment.map;
    map.atomic(SLEEPERS).fetch_add(1, SeqCst);
    let woke = map.wait(VALUE, expected, deadline);
    map.atomic(SLEEPERS).fetch_sub(1, SeqCst);
    Ok(woke?)
}

fn wake(segment: &Segment<u32>, count: u32) {
    if segment.map.atomic(SLEEPERS).load(SeqCst) > 0 {
        segment.map.wake(VALUE, count);
    }
}

/// Takes one unit of a semaphore, waiting until `deadline`.
fn take(segment: &Segment<u32>, deadline: Option<Instant>) -> Result<bool> {
    let value = segment.map.atomic(VALUE);
    loop {
        let v = value.load(SeqCst);
        if v > 0 {
            if value.compare_exchange(v, v - 1, SeqCst, SeqCst).is_ok() {
                return Ok(true);
            }
            continue;
        }
        if !sleep_while(segment, 0, deadline)? && value.load(SeqCst) == 0 {
            return Ok(false);
        }
    }
}

macro_rules! semaphore {
    ($name:ident, $bounded:expr, $label:expr, $doc:expr) => {
        #[doc = $doc]
        pub struct $name {
            segment: Arc<Segment<u32>>,
        }

        impl $name {
            /// A semaphore with `value` units.
            ///
            /// # Errors
            ///
            /// [`Error::Io`] if the system gives no shared memory.
            pub fn new(value: u32) -> Result<Self> {
                Ok($name { segment: Segment::create($label, &[value, 0, value], 3, false)? })
            }

            /// Takes a unit, waiting for one.
            ///
            /// # Errors
            ///
            /// [`Error::Io`] if waiting fails.
            pub fn acquire(&self) -> Result<()> {
                take(&self.segment, None).map(drop)
            }

            /// Takes a unit if there is one: `Ok(false)` if not.
            ///
            /// # Errors
            ///
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<bool> {
                take(&self.segment, Some(Instant::now()))
            }

            /// Takes a unit, waiting at most `timeout`: `Ok(false)` if none
            /// came.
            ///
            /// # Errors
            ///
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                take(&self.segment, Some(Instant::now() + timeout))
            }

            /// Gives a unit back (any process may), waking one waiter.
            ///
            /// # Errors
            ///
            /// For a [`BoundedSemaphore`], [`Error::Io`] (`InvalidInput`) if
            /// that would exceed its initial value.
            pub fn release(&self) -> Result<()> {
                let value = self.segment.map.atomic(VALUE);
                let bound = if $bounded { self.segment.map.atomic(BOUND).load(SeqCst) } else { u32::MAX };
                let mut v = value.load(SeqCst);
                loop {
                    if v >= bound {
                        return Err(Error::invalid_input("semaphore or lock released too many times"));
                    }
                    match value.compare_exchange(v, v + 1, SeqCst, SeqCst) {
                        Ok(_) => break,
                        Err(now) => v = now,
                    }
                }
                wake(&self.segment, 1);
                Ok(())
            }

            /// The units available now.
            pub fn value(&self) -> u32 {
                self.segment.map.atomic(VALUE).load(SeqCst)
            }
        }

        handle!($name);
    };
}

/// `Clone`, serde and `Debug` for a handle to a segment of three words.
macro_rules! handle {
    ($name:ident) => {
        sync_handle!($name, 3, false);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("value", &self.segment.map.atomic(VALUE).load(SeqCst))
                    .finish()
            }
        }
    };
}

semaphore!(
    Semaphore,
    false,
    "multiproc-semaphore",
    "A counter shared by processes: Python's `multiprocessing.Semaphore`. \
     `acquire` takes a unit (waiting for one), `release` gives one back; \
     any process may release."
);
semaphore!(
    BoundedSemaphore,
    true,
    "multiproc-bounded-semaphore",
    "A [`Semaphore`] that refuses to be released above its initial value: \
     Python's `multiprocessing.BoundedSemaphore`."
);

/// A flag processes can wait for: Python's `multiprocessing.Event`.
///
/// ```
/// # use std::time::Duration;
/// # fn main() -> multiproc::Result<()> {
/// let ev = multiproc::Event::new()?;
/// assert!(!ev.wait_timeout(Duration::from_millis(10)));
/// ev.set();
/// ev.wait();
/// assert!(ev.is_set());
/// # Ok(())
/// # }
/// ```
pub struct Event {
    segment: Arc<Segment<u32>>,
}

impl Event {
    /// A new event, not set.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new() -> Result<Self> {
        Ok(Event { segment: Segment::create("multiproc-event", &[0, 0, 0], 3, false)? })
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.segment.map.atomic(VALUE).store(1, SeqCst);
        wake(&self.segment, u32::MAX);
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.segment.map.atomic(VALUE).store(0, SeqCst);
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        self.segment.map.atomic(VALUE).load(SeqCst) == 1
    }

    /// Waits until the flag is set.
    ///
    /// # Panics
    ///
    /// If the system refuses to wait (it does not on Linux).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; true if it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        while !self.is_set() {
            match sleep_while(&self.segment, 0, deadline) {
                Ok(true) => {}
                Ok(false) => return self.is_set(),
                Err(e) => panic!("waiting for an event: {e}"),
            }
        }
        true
    }
}

handle!(Event);
