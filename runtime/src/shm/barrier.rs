//! [`Barrier`]: a robust lock, counters and a futex-backed generation
//! number in a shared segment of their own, and the table of the processes
//! that hold it, whose deaths break it.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{DATA, Segment};
use crate::error::{Error, Result};
use crate::start::watch::{self, Member};

/// The words after the lock. `GENERATION` changes whenever the waiting
/// parties leave: all released, or the barrier broken or reset under them;
/// `BROKEN_GENERATION` + 1 is the generation that was broken last (0:
/// none).
const PARTIES: usize = DATA;
const COUNT: usize = DATA + 4;
const GENERATION: usize = DATA + 8;
const BROKEN: usize = DATA + 12;
const BROKEN_GENERATION: usize = DATA + 16;
/// Changes whenever a process joins the table.
const EPOCH: usize = DATA + 20;
/// The word waiters sleep on: it changes (and they are woken) when either
/// of the two above does. One word for both, so that a waiter that read it
/// under the lock misses neither.
const SEQ: usize = DATA + 24;
/// The table of processes holding the barrier: `MEMBERS` slots of four
/// words, the pid (0: a free slot), how many handles that process holds,
/// and its start time, low and high word.
const TABLE: usize = DATA + 32;
const MEMBERS: usize = 128;
/// The words of the segment after the lock.
const WORDS: usize = (TABLE - DATA) / 4 + 4 * MEMBERS;

fn slot(i: usize) -> usize {
    TABLE + 16 * i
}

/// A barrier for a fixed number of parties, threads or processes:
/// Python's `multiprocessing.Barrier`. Each [`wait`](Barrier::wait)
/// returns once `parties` of them wait, with a distinct index in
/// `0..parties`.
///
/// A wait that times out breaks the barrier, as does
/// [`abort`](Barrier::abort): every party waiting, and every later wait,
/// gets [`Error::BrokenBarrier`] until [`reset`](Barrier::reset).
///
/// So does the death of a process that holds a handle to it, whether or
/// not it was waiting (a SIGKILL, a crash, or an exit while a handle was
/// still alive): Python's barrier would leave the others waiting forever
/// for a party that can no longer come. A process that drops its handles
/// leaves quietly. Up to 128 processes at once are watched this way.
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
    hold: Arc<Hold>,
}

/// This process's place in the table, given up when the last handle of
/// this process goes. Only handles own it: the watcher thread reaches the
/// barrier through a `Weak<Inner>`, so the last drop, which leaves the
/// table, always happens in a user's thread, before that thread goes on.
struct Hold {
    inner: Arc<Inner>,
}

struct Inner {
    segment: Segment<u32>,
    /// The `EPOCH` whose members this process watches (`u32::MAX`: none).
    watched: AtomicU32,
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
        let mut words = vec![0; WORDS];
        words[0] = parties;
        let segment = Segment::create("multiproc-barrier", &words, WORDS, true)?;
        let segment =
            Arc::try_unwrap(segment).unwrap_or_else(|_| unreachable!("a new segment has one owner"));
        Barrier::join(segment)
    }

    /// Puts this process in the table of `segment`, and wakes the waiters
    /// so that they watch it too.
    fn join(segment: Segment<u32>) -> Result<Self> {
        let me = Member::me()?;
        let inner = Arc::new(Inner { segment, watched: AtomicU32::new(u32::MAX) });
        let barrier = Barrier { hold: Arc::new(Hold { inner }) };
        let map = &barrier.hold.inner.segment.map;
        let locked = barrier.lock_state();
        let found = (0..MEMBERS).find(|&i| member_at(map, i) == Some(me));
        if let Some(i) = found.or_else(|| (0..MEMBERS).find(|&i| map.atomic(slot(i)).load(SeqCst) == 0)) {
            map.atomic(slot(i) + 4).fetch_add(1, SeqCst);
            map.atomic(slot(i) + 8).store(me.start as u32, SeqCst);
            map.atomic(slot(i) + 12).store((me.start >> 32) as u32, SeqCst);
            map.atomic(slot(i)).store(me.pid, SeqCst);
        }
        map.atomic(EPOCH).fetch_add(1, SeqCst);
        wake_all(map);
        drop(locked);
        Ok(barrier)
    }

    fn segment(&self) -> &Segment<u32> {
        &self.hold.inner.segment
    }

    /// Watches the other processes of the table, if it changed since this
    /// process last looked; one that is gone already breaks the barrier.
    fn watch_members(&self) -> Result<()> {
        let map = &self.segment().map;
        let epoch = map.atomic(EPOCH).load(SeqCst);
        if self.hold.inner.watched.load(SeqCst) == epoch {
            return Ok(());
        }
        let me = Member::me()?;
        let members: Vec<Member> = {
            let _locked = self.lock_state();
            (0..MEMBERS).filter_map(|i| member_at(map, i)).filter(|m| *m != me).collect()
        };
        let mut alive = Vec::with_capacity(members.len());
        for member in members {
            match member.pidfd() {
                Some(pidfd) => alive.push((member, pidfd)),
                None => self.hold.inner.member_died(member),
            }
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.hold.inner);
        let on_death = Arc::new(move |member| {
            if let Some(inner) = weak.upgrade() {
                inner.member_died(member);
            }
        });
        watch::watch(Arc::as_ptr(&self.hold.inner) as usize, alive, on_death)?;
        self.hold.inner.watched.store(epoch, SeqCst);
        Ok(())
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
        let map = &self.segment().map;
        let word = |offset| map.atomic(offset);
        let locked = map.lock(0, None)?.expect("no deadline, no timeout");
        if word(BROKEN).load(SeqCst) != 0 {
            return Err(Error::BrokenBarrier);
        }
        let index = word(COUNT).fetch_add(1, SeqCst);
        if index + 1 == word(PARTIES).load(SeqCst) {
            word(COUNT).store(0, SeqCst);
            word(GENERATION).fetch_add(1, SeqCst);
            wake_all(map);
            return Ok(index as usize);
        }
        let generation = word(GENERATION).load(SeqCst);
        let mut seq = word(SEQ).load(SeqCst);
        drop(locked);
        loop {
            // Every process that joined before `seq` was read is watched
            // before sleeping; one that joins later changes `SEQ`, and the
            // sleep returns at once.
            self.watch_members()?;
            let in_time = map.wait(SEQ, seq, deadline)?;
            seq = word(SEQ).load(SeqCst);
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
                self.hold.inner.break_locked(true);
                return Err(Error::BrokenBarrier);
            }
        }
    }
}

impl Inner {
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
        wake_all(map);
    }

    /// `member` ended: if it still held the barrier, it is taken out of the
    /// table and the barrier breaks.
    fn member_died(&self, member: Member) {
        let map = &self.segment.map;
        let Ok(Some(_locked)) = map.lock(0, None) else { return };
        if let Some(i) = (0..MEMBERS).find(|&i| member_at(map, i) == Some(member)) {
            for word in 0..4 {
                map.atomic(slot(i) + 4 * word).store(0, SeqCst);
            }
            self.break_locked(true);
        }
    }
}

impl Drop for Hold {
    /// The last handle of this process goes: it leaves the table quietly.
    fn drop(&mut self) {
        watch::forget(Arc::as_ptr(&self.inner) as usize);
        let map = &self.inner.segment.map;
        let (Ok(me), Ok(Some(_locked))) = (Member::me(), map.lock(0, None)) else { return };
        if let Some(i) = (0..MEMBERS).find(|&i| member_at(map, i) == Some(me))
            && map.atomic(slot(i) + 4).fetch_sub(1, SeqCst) == 1
        {
            for word in 0..4 {
                map.atomic(slot(i) + 4 * word).store(0, SeqCst);
            }
        }
    }
}

/// Wakes every waiter, to look at what changed. The caller holds the lock.
fn wake_all(map: &crate::sys::shm::Mapping) {
    map.atomic(SEQ).fetch_add(1, SeqCst);
    map.wake(SEQ, u32::MAX);
}

/// The process in slot `i`, if any.
fn member_at(map: &crate::sys::shm::Mapping, i: usize) -> Option<Member> {
    let pid = map.atomic(slot(i)).load(SeqCst);
    let start = u64::from(map.atomic(slot(i) + 8).load(SeqCst))
        | u64::from(map.atomic(slot(i) + 12).load(SeqCst)) << 32;
    (pid != 0).then_some(Member { pid, start })
}

impl Barrier {
    /// Breaks the barrier: the parties waiting and every later wait get
    /// [`Error::BrokenBarrier`], until [`reset`](Barrier::reset).
    ///
    /// # Panics
    ///
    /// If this thread is inside [`wait`](Barrier::wait) on it (it cannot
    /// be: `wait` holds the barrier's lock only for moments).
    pub fn abort(&self) {
        let _locked = self.lock_state();
        self.hold.inner.break_locked(true);
    }

    /// Empties the barrier for reuse: the parties waiting get
    /// [`Error::BrokenBarrier`], later waits work again.
    ///
    /// # Panics
    ///
    /// As [`abort`](Barrier::abort).
    pub fn reset(&self) {
        let _locked = self.lock_state();
        self.hold.inner.break_locked(false);
    }

    fn lock_state(&self) -> crate::sys::shm::Locked<'_> {
        match self.segment().map.lock(0, None) {
            Ok(Some(locked)) => locked,
            Ok(None) => unreachable!("a lock without a deadline does not time out"),
            Err(e) => panic!("the lock of a barrier: {e}"),
        }
    }

    /// How many parties it waits for.
    pub fn parties(&self) -> u32 {
        self.segment().map.atomic(PARTIES).load(SeqCst)
    }

    /// How many parties wait now.
    pub fn n_waiting(&self) -> u32 {
        self.segment().map.atomic(COUNT).load(SeqCst)
    }

    /// True if the barrier is broken.
    pub fn broken(&self) -> bool {
        self.segment().map.atomic(BROKEN).load(SeqCst) != 0
    }
}

impl Clone for Barrier {
    /// Another handle to the same barrier.
    fn clone(&self) -> Self {
        Barrier { hold: self.hold.clone() }
    }
}

impl serde::Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serde::Serialize::serialize(self.segment(), serializer)
    }
}

/// A barrier that arrives in a process puts that process in its table.
impl<'de> serde::Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let segment = <Segment<u32> as serde::Deserialize>::deserialize(deserializer)?;
        if segment.len != WORDS || !segment.locked {
            return Err(crate::codec::de_error("this handle is not a Barrier"));
        }
        Barrier::join(segment).map_err(crate::codec::de_error)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}
