//! [`Barrier`]: a robust lock, counters and a futex-backed generation
//! number in a shared segment of their own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::{DATA, Segment};
use crate::error::{Error, Result};

/// The words after the lock. `GENERATION` changes (and waiters are woken)
/// whenever the waiting parties leave: all released, or the barrier
/// broken or reset under them; `BROKEN_GENERATION` + 1 is the generation
/// that was broken last (0: none).
const PARTIES: usize = DATA;
const COUNT: usize = DATA + 4;
const GENERATION: usize = DATA + 8;
const BROKEN: usize = DATA + 12;
const BROKEN_GENERATION: usize = DATA + 16;

/// A barrier for a fixed number of parties, threads or processes:
/// Python's `multiprocessing.Barrier`. Each [`wait`](Barrier::wait)
/// returns once `parties` of them wait, with a distinct index in
/// `0..parties`.
///
/// A wait that times out breaks the barrier, as does
/// [`abort`](Barrier::abort): every party waiting, and every later wait,
/// gets [`Error::BrokenBarrier`] until [`reset`](Barrier::reset).
///
/// ```
/// #[multiproc::remote]
/// fn party(b: multiproc::Barrier) -> usize {
///     b.wait().unwrap()
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let b = multiproc::Barrier::new(3)?;
/// let others = [multiproc::spawn(party, (b.clone(),))?, multiproc::spawn(party, (b.clone(),))?];
/// let mine = b.wait()?;
/// let mut all: Vec<usize> = others.into_iter().map(|p| p.join()).collect::<multiproc::Result<_>>()?;
/// all.push(mine);
/// all.sort();
/// assert_eq!(all, [0, 1, 2]);
/// # Ok(())
/// # }
/// ```
pub struct Barrier {
    segment: Arc<Segment<u32>>,
}

impl Barrier {
    /// A barrier for `parties` parties.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for 0 parties, or if the system
    /// gives no shared memory.
    pub fn new(parties: u32) -> Result<Self> {
        if parties == 0 {
            return Err(Error::invalid_input("a barrier needs at least one party"));
        }
        Ok(Barrier { segment: Segment::create("multiproc-barrier", &[parties, 0, 0, 0, 0], 5, true)? })
    }

    /// Waits until every party waits, and returns this party's index.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is broken, or breaks (or is
    /// reset) while waiting.
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(None)
    }

    /// Like [`wait`](Barrier::wait), for at most `timeout`: running out of
    /// time breaks the barrier, for every party.
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize> {
        let map = &self.segment.map;
        let word = |offset| map.atomic(offset);
        let locked = map.lock(0, None)?.expect("no deadline, no timeout");
        if word(BROKEN).load(SeqCst) != 0 {
            return Err(Error::BrokenBarrier);
        }
        let index = word(COUNT).fetch_add(1, SeqCst);
        if index + 1 == word(PARTIES).load(SeqCst) {
            word(COUNT).store(0, SeqCst);
            word(GENERATION).fetch_add(1, SeqCst);
            map.wake(GENERATION, u32::MAX);
            return Ok(index as usize);
        }
        let generation = word(GENERATION).load(SeqCst);
        drop(locked);
        loop {
            let in_time = map.wait(GENERATION, generation, deadline)?;
            if word(GENERATION).load(SeqCst) != generation {
                return if word(BROKEN_GENERATION).load(SeqCst) == generation.wrapping_add(1) {
                    Err(Error::BrokenBarrier)
                } else {
                    Ok(index as usize)
                };
            }
            if !in_time {
                let _locked = map.lock(0, None)?.expect("no deadline, no timeout");
                if word(GENERATION).load(SeqCst) != generation {
                    continue; // released or broken just now
                }
                self.break_locked(true);
                return Err(Error::BrokenBarrier);
            }
        }
    }

    /// Sends the parties waiting away broken; with `stay_broken`, later
    /// waits fail too. The caller holds the lock.
    fn break_locked(&self, stay_broken: bool) {
        let map = &self.segment.map;
        let generation = map.atomic(GENERATION).load(SeqCst);
        if map.atomic(COUNT).load(SeqCst) > 0 {
            map.atomic(BROKEN_GENERATION).store(generation.wrapping_add(1), SeqCst);
            map.atomic(GENERATION).fetch_add(1, SeqCst);
        }
        map.atomic(COUNT).store(0, SeqCst);
        map.atomic(BROKEN).store(u32::from(stay_broken), SeqCst);
        map.wake(GENERATION, u32::MAX);
    }

    /// Breaks the barrier: the parties waiting and every later wait get
    /// [`Error::BrokenBarrier`], until [`reset`](Barrier::reset).
    ///
    /// # Panics
    ///
    /// If this thread is inside [`wait`](Barrier::wait) on it (it cannot
    /// be: `wait` holds the barrier's lock only for moments).
    pub fn abort(&self) {
        let _locked = self.lock_state();
        self.break_locked(true);
    }

    /// Empties the barrier for reuse: the parties waiting get
    /// [`Error::BrokenBarrier`], later waits work again.
    ///
    /// # Panics
    ///
    /// As [`abort`](Barrier::abort).
    pub fn reset(&self) {
        let _locked = self.lock_state();
        self.break_locked(false);
    }

    fn lock_state(&self) -> crate::sys::shm::Locked<'_> {
        match self.segment.map.lock(0, None) {
            Ok(Some(locked)) => locked,
            Ok(None) => unreachable!("a lock without a deadline does not time out"),
            Err(e) => panic!("the lock of a barrier: {e}"),
        }
    }

    /// How many parties it waits for.
    pub fn parties(&self) -> u32 {
        self.segment.map.atomic(PARTIES).load(SeqCst)
    }

    /// How many parties wait now.
    pub fn n_waiting(&self) -> u32 {
        self.segment.map.atomic(COUNT).load(SeqCst)
    }

    /// True if the barrier is broken.
    pub fn broken(&self) -> bool {
        self.segment.map.atomic(BROKEN).load(SeqCst) != 0
    }
}

sync_handle!(Barrier, 5, true);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}
