//! The shared ring under every queue: encoded items in a byte ring in a
//! shared segment, with two robust locks, one for the producers and one
//! for the consumers, and futexes to sleep on.
//!
//! An item is an 8-byte header (payload length, flags), followed, for an
//! item that carries handles, by the 8-byte number of its fd message, then
//! its payload, and may wrap around the end of
//! the ring. A producer copies an item into the free space after `TAIL`,
//! then moves `TAIL` past it: a consumer never sees part of an item that
//! fits. A consumer copies it out, then moves `HEAD` past it: a consumer
//! killed while copying leaves the item for the next one.
//!
//! An item larger than the ring is streamed: the producer writes
//! what fits and moves `TAIL`, waits for room, and goes on, holding the
//! producers' lock all along so that items do not interleave; the consumer
//! holding the consumers' lock reads it as it comes. Either side's death is
//! repaired by the next holder of its lock (a robust mutex tells it):
//! - a producer that dies half-way leaves `PUT_START` set: the next
//!   producer marks the item aborted (`ABORTED`, `ABORT_AT`), and the
//!   consumer reading it drops what it has;
//! - a consumer that dies half-way leaves `GET_START` set: the next
//!   consumer skips the rest of that item.
//!
//! A consumer that waits for the rest of a streamed item also watches the
//! producer's pidfd, so that it learns of the producer's death without
//! waiting for another producer to come.
//!
//! fds cannot live in shared memory: the fds of an item travel as one
//! message on a `SOCK_SEQPACKET` pair that every handle holds, numbered
//! from `FD_SEQ`, sent (by the holder of the producers' lock) before the
//! item is visible and taken (by the holder of the consumers' lock) when
//! it is read. A message whose item was never published is dropped; an
//! item whose message was taken by a consumer that then died is dropped
//! too, as its handles died with that consumer.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::start::watch::{self, Member};
use crate::sys;
use crate::sys::shm::Mapping;

// The segment's layout. Positions (`HEAD`, `TAIL`, ...) count bytes since
// the queue was made; the ring offset is the position modulo the capacity.
// What producers write, what consumers write and each futex have a cache
// line of their own: one shared line bounced between the two sides on
// every item, and cost more than the rest of a put and a get together.
const PUT_LOCK: usize = 0;
const GET_LOCK: usize = 64;
// Written by producers.
const TAIL: usize = 128;
/// Whole items put, ever.
const PUT_COUNT: usize = 136;
/// The number the next fd message gets.
const FD_SEQ: usize = 144;
/// Start of the item being streamed in (`NONE`: none).
const PUT_START: usize = 152;
/// The producer streaming an item: pid and start time.
const PUT_PID: usize = 168;
const PUT_PID_START: usize = 176;
// Written by consumers.
const HEAD: usize = 192;
/// Whole items taken, ever.
const GOT_COUNT: usize = 200;
/// Start and end of the item being streamed out (`NONE`: none).
const GET_START: usize = 208;
const GET_END: usize = 216;
/// Futex words, changed (and slept on) when data comes or room is made,
/// and the number of sleepers on each.
const DATA_SEQ: usize = 256;
const DATA_SLEEPERS: usize = 260;
const SPACE_SEQ: usize = 320;
const SPACE_SLEEPERS: usize = 324;
// Rarely written.
/// The last item a producer left half-way, and where its bytes stop.
const ABORTED: usize = 384;
const ABORT_AT: usize = 392;
const CAPACITY: usize = 400;
const CLOSED: usize = 408;
const MAXSIZE: usize = 412;
/// `JoinableQueue`: items put and not yet marked done.
const UNFINISHED: usize = 448;
const JOIN_SEQ: usize = 452;
const JOIN_SLEEPERS: usize = 456;
/// Where the ring's bytes begin: a page in.
const RING: usize = 4096;

const NONE: u64 = u64::MAX;

/// The header: payload length and flags; with `HAS_FDS`, the number of the
/// item's fd message follows (`FD_HEADER` in all).
const HEADER: u64 = 8;
const FD_HEADER: u64 = 16;
/// Items up to this many bytes are copied into the ring with their header
/// in one copy.
const SMALL: usize = 240;
const HAS_FDS: u32 = 1;

/// How long a side spins, looking again and again, before it sleeps, in
/// microseconds of pausing (the looks add to it). Sleeping and being woken
/// cost a system call each, and tens of microseconds on these machines; a
/// producer and a consumer that keep pace meet within it.
const SPIN_US: u32 = 20;

/// The most a waiting side pauses between two looks, in nanoseconds. Each
/// look at the other side's position takes its cache line away from it,
/// and the other side's next locked instruction then waits for the line to
/// come back: a consumer that looks for every item as it comes halves the
/// producer's pace. A side that had to look more than once doubles its
/// pause for the next wait, up to this; one that had to sleep starts again
/// from one pause. A stream of items then goes in batches, for at most this
/// much latency more per item; a side that sleeps between items pays
/// nothing.
const MAX_GAP_NS: u32 = 1000;

/// `spin_loop` hints per microsecond on this machine: from about 10 to
/// over 100, depending on the processor. The fastest of a few short
/// samples: another process taking the CPU only ever makes one slower, and
/// one slow sample would make every wait of this process spin too little.
/// Pauses are counted rather than the clock read between looks: a reading
/// costs about two pauses here.
fn pauses_per_us() -> u32 {
    static PER_US: OnceLock<u32> = OnceLock::new();
    *PER_US.get_or_init(|| {
        const PAUSES: u128 = 1000;
        let fastest = (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..PAUSES {
                    std::hint::spin_loop();
                }
                start.elapsed().as_nanos().max(1)
            })
            .min()
            .unwrap_or(1);
        (PAUSES * 1000 / fastest).clamp(1, 1000) as u32
    })
}

/// Whose futex a wait sleeps on: consumers waiting for data, producers for
/// room, `join` for every task done.
#[derive(Debug, Clone, Copy)]
enum Side {
    Data,
    Space,
    Join,
}

impl Side {
    /// The futex word and the count of sleepers on it.
    fn words(self) -> (usize, usize) {
        match self {
            Side::Data => (DATA_SEQ, DATA_SLEEPERS),
            Side::Space => (SPACE_SEQ, SPACE_SLEEPERS),
            Side::Join => (JOIN_SEQ, JOIN_SLEEPERS),
        }
    }
}

/// The default size of the ring. Its pages are only made when first
/// written.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Ring {
    map: Mapping,
    capacity: u64,
    /// Both ends of the fd message pair: producers send on one, consumers
    /// receive on the other.
    fds_in: OwnedFd,
    fds_out: OwnedFd,
    /// Set by the watcher thread when the producer this process's consumer
    /// waits on has ended.
    producer_gone: AtomicBool,
    /// `HEAD` as this process's producers last read it, and `TAIL` as its
    /// consumers did: both only grow, so an old value only underestimates
    /// the room or the data, and the shared line, which the other side
    /// writes on every item, is read again only when that is not enough.
    seen_head: AtomicU64,
    seen_tail: AtomicU64,
    /// Pauses between two looks when this process waits for data, and for
    /// room (see [`MAX_GAP_NS`]).
    data_gap: AtomicU32,
    space_gap: AtomicU32,
}

/// What a wait ended with.
enum Wait {
    Ready,
    TimedOut,
}

impl Ring {
    /// A ring of `capacity` bytes; with `maxsize` > 0, at most that many
    /// items.
    pub(crate) fn create(capacity: usize, maxsize: u32) -> Result<Ring> {
        if capacity < 64 {
            return Err(Error::invalid_input("a queue's ring needs at least 64 bytes"));
        }
        let map = Mapping::create("multiproc-queue", RING + capacity)?;
        map.init_mutex(PUT_LOCK, false)?;
        map.init_mutex(GET_LOCK, false)?;
        for word in [PUT_START, ABORTED, ABORT_AT, GET_START, GET_END] {
            map.atomic64(word).store(NONE, SeqCst);
        }
        map.atomic64(CAPACITY).store(capacity as u64, SeqCst);
        map.atomic(MAXSIZE).store(maxsize, SeqCst);
        let (fds_in, fds_out) = sys::socket::seqpacket_pair()?;
        Ok(Ring::new(map, capacity as u64, fds_in, fds_out))
    }

    /// A ring received from another process.
    pub(crate) fn open(segment: OwnedFd, fds_in: OwnedFd, fds_out: OwnedFd) -> io::Result<Ring> {
        let map = Mapping::open(segment)?;
        if map.len() <= RING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a queue segment too small for its header",
            ));
        }
        let capacity = map.atomic64(CAPACITY).load(SeqCst);
        if capacity != (map.len() - RING) as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a queue segment of the wrong size"));
        }
        Ok(Ring::new(map, capacity, fds_in, fds_out))
    }

    fn new(map: Mapping, capacity: u64, fds_in: OwnedFd, fds_out: OwnedFd) -> Ring {
        Ring {
            map,
            capacity,
            fds_in,
            fds_out,
            producer_gone: AtomicBool::new(false),
            seen_head: AtomicU64::new(0),
            seen_tail: AtomicU64::new(0),
            data_gap: AtomicU32::new(1),
            space_gap: AtomicU32::new(1),
        }
    }

    /// The fds that make up the ring, to send it to another process.
    pub(crate) fn fds(&self) -> [BorrowedFd<'_>; 3] {
        [self.map.fd(), self.fds_in.as_fd(), self.fds_out.as_fd()]
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        self.map.atomic(offset)
    }

    fn pos(&self, offset: usize) -> &AtomicU64 {
        self.map.atomic64(offset)
    }

    /// Whole items in the queue.
    pub(crate) fn len(&self) -> usize {
        self.count() as usize
    }

    /// Items put and not taken. Taken is read first: it never passes put.
    fn count(&self) -> u64 {
        let got = self.pos(GOT_COUNT).load(SeqCst);
        self.pos(PUT_COUNT).load(SeqCst).saturating_sub(got)
    }

    pub(crate) fn maxsize(&self) -> u32 {
        self.word(MAXSIZE).load(SeqCst)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.word(CLOSED).load(SeqCst) != 0
    }

    /// Closes the queue for every handle: puts fail from now on; gets take
    /// what is left, then fail.
    pub(crate) fn close(&self) {
        self.word(CLOSED).store(1, SeqCst);
        self.wake(Side::Data, true);
        self.wake(Side::Space, true);
        self.wake(Side::Join, true);
    }

    // --- Sleeping and waking.

    /// Wakes the sleepers of `side`, if any (`force`: whether or not they
    /// counted themselves, for the rare events).
    fn wake(&self, side: Side, force: bool) {
        let (seq, sleepers) = side.words();
        if force || self.word(sleepers).load(SeqCst) > 0 {
            self.word(seq).fetch_add(1, SeqCst);
            self.map.wake(seq, u32::MAX);
        }
    }

    /// The pauses between looks of this process's waits on `side` (see
    /// [`MAX_GAP_NS`]).
    fn gap(&self, side: Side) -> Option<&AtomicU32> {
        match side {
            Side::Data => Some(&self.data_gap),
            Side::Space => Some(&self.space_gap),
            Side::Join => None,
        }
    }

    /// Waits until `ready()` or `deadline`: spins for [`SPIN_US`] (where
    /// spinning may help), then sleeps on `side`'s futex, counted among its
    /// sleepers.
    fn wait_for(
        &self,
        side: Side,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Wait> {
        // The clock only for a deadline: reading it costs a sixth of a
        // small item's put or get.
        if deadline.is_some_and(|d| d <= Instant::now()) {
            // A `try_` call: one look, no spinning.
            return Ok(if ready() { Wait::Ready } else { Wait::TimedOut });
        }
        let gap = self.gap(side);
        if crate::process::may_spin() {
            let per_us = pauses_per_us();
            let pauses = gap.map_or(1, |g| g.load(Relaxed).max(1));
            let budget = SPIN_US * per_us;
            let mut spun = 0;
            let mut looks = 0u32;
            while spun < budget {
                looks += 1;
                if ready() {
                    if looks > 1
                        && let Some(gap) = gap
                    {
                        gap.store((pauses * 2).min((MAX_GAP_NS * per_us / 1000).max(1)), Relaxed);
                    }
                    return Ok(Wait::Ready);
                }
                for _ in 0..pauses {
                    std::hint::spin_loop();
                }
                spun += pauses;
            }
        }
        if let Some(gap) = gap {
            gap.store(1, Relaxed);
        }
        let (seq, sleepers) = side.words();
        loop {
            self.word(sleepers).fetch_add(1, SeqCst);
            let seen = self.word(seq).load(SeqCst);
            // Looked at after counting ourselves: a change made before the
            // count is seen here; one made after it wakes us.
            let now_ready = ready();
            let in_time = if now_ready { true } else { self.map.wait(seq, seen, deadline)? };
            self.word(sleepers).fetch_sub(1, SeqCst);
            if now_ready || ready() {
                return Ok(Wait::Ready);
            }
            if !in_time {
                return Ok(Wait::TimedOut);
            }
        }
    }

    /// Room after `TAIL`, for a holder of the producers' lock: at least
    /// `want` bytes if there are, reading `HEAD` only if the last value
    /// seen does not show them.
    fn room(&self, want: u64) -> u64 {
        let tail = self.pos(TAIL).load(Relaxed);
        // Other processes' producers may have moved `TAIL` more than a
        // ring past the `HEAD` this one saw last.
        let free = self.capacity.saturating_sub(tail - self.seen_head.load(Relaxed));
        if free >= want {
            return free;
        }
        let head = self.pos(HEAD).load(SeqCst);
        self.seen_head.store(head, Relaxed);
        self.capacity - (tail - head)
    }

    /// Bytes before `TAIL` from `head` on, for a holder of the consumers'
    /// lock: at least `want` if there are (see [`room`](Ring::room)).
    fn data(&self, head: u64, want: u64) -> u64 {
        let seen = self.seen_tail.load(Relaxed).max(head);
        if seen - head >= want {
            return seen - head;
        }
        let tail = self.pos(TAIL).load(SeqCst);
        self.seen_tail.store(tail, Relaxed);
        tail - head
    }

    /// Adds one to a counter only holders of one lock write: no locked
    /// instruction needed.
    fn bump(&self, counter: usize) -> u64 {
        let n = self.pos(counter).load(Relaxed);
        self.pos(counter).store(n + 1, Relaxed);
        n
    }

    // --- Copies, wrapping around the end of the ring.

    fn copy_in(&self, pos: u64, data: &[u8]) {
        let offset = (pos % self.capacity) as usize;
        let first = data.len().min(self.capacity as usize - offset);
        self.map.copy_in(RING + offset, &data[..first]);
        if first < data.len() {
            self.map.copy_in(RING, &data[first..]);
        }
    }

    fn copy_out(&self, pos: u64, out: &mut [u8]) {
        let offset = (pos % self.capacity) as usize;
        let first = out.len().min(self.capacity as usize - offset);
        self.map.copy_out(RING + offset, &mut out[..first]);
        if first < out.len() {
            self.map.copy_out(RING, &mut out[first..]);
        }
    }

    // --- Producers.

    /// Puts one item, waiting until `deadline` at most for the producers'
    /// lock and for room. `Full` if the time ran out (nothing of the item
    /// stays in the queue), `Closed` if the queue is closed.
    pub(crate) fn put(&self, bytes: &[u8], fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> Result<()> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| Error::invalid_input("a queue item of 4 GiB or more"))?;
        let Some(locked) = self.map.lock(PUT_LOCK, deadline)? else { return Err(Error::Full) };
        if locked.owner_died() {
            self.abort_put();
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let maxsize = self.maxsize();
        if maxsize > 0 {
            // `HEAD` first, sequentially consistent: a consumer moves it
            // (so) after the count it bumps with a plain store, and looks
            // for sleepers after; so either this sees the new count, or the
            // consumer sees this producer asleep.
            let room = || {
                self.pos(HEAD).load(SeqCst);
                self.count() < u64::from(maxsize) || self.is_closed()
            };
            if let Wait::TimedOut = self.wait_for(Side::Space, deadline, room)? {
                return Err(Error::Full);
            }
            if self.is_closed() {
                return Err(Error::Closed);
            }
        }
        let has_fds = !fds.is_empty();
        let hlen = if has_fds { FD_HEADER } else { HEADER };
        let total = hlen + u64::from(len);
        if total <= self.capacity {
            // It fits the ring: wait for room for all of it.
            let room = || self.room(total) >= total || self.is_closed();
            if let Wait::TimedOut = self.wait_for(Side::Space, deadline, room)? {
                return Err(Error::Full);
            }
            if self.is_closed() {
                return Err(Error::Closed);
            }
        }
        // The fds go out only now that the item will go in: a put that
        // failed above leaves no message behind, to hold its handles open
        // and fill the socket.
        let (flags, fd_seq) = if has_fds {
            let fd_seq = self.bump(FD_SEQ);
            self.send_fds(fd_seq, fds, deadline)?;
            (HAS_FDS, fd_seq)
        } else {
            (0, 0)
        };
        let mut header = [0u8; FD_HEADER as usize];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..8].copy_from_slice(&flags.to_le_bytes());
        header[8..].copy_from_slice(&fd_seq.to_le_bytes());
        let header = &header[..hlen as usize];
        let start = self.pos(TAIL).load(SeqCst);
        if total <= self.room(total) {
            if bytes.len() <= SMALL {
                // One copy into the ring rather than two.
                let mut item = [0u8; FD_HEADER as usize + SMALL];
                item[..hlen as usize].copy_from_slice(header);
                item[hlen as usize..total as usize].copy_from_slice(bytes);
                self.copy_in(start, &item[..total as usize]);
            } else {
                self.copy_in(start, header);
                self.copy_in(start + hlen, bytes);
            }
            self.bump(PUT_COUNT);
            // The Dekker pair of `wait_for`: publish, then look for
            // sleepers, both sequentially consistent.
            self.pos(TAIL).store(start + total, SeqCst);
            self.wake(Side::Data, false);
            return Ok(());
        }
        self.stream_in(start, header, bytes, deadline)
    }

    /// Puts an item larger than the ring, piece by piece.
    fn stream_in(&self, start: u64, header: &[u8], bytes: &[u8], deadline: Option<Instant>) -> Result<()> {
        let me = Member::me()?;
        self.pos(PUT_PID).store(u64::from(me.pid), SeqCst);
        self.pos(PUT_PID_START).store(me.start, SeqCst);
        let hlen = header.len() as u64;
        let total = hlen + bytes.len() as u64;
        self.pos(PUT_START).store(start, SeqCst);
        let mut done = 0u64;
        while done < total {
            // The header goes in whole.
            let need = if done == 0 { hlen } else { 1 };
            let room = || self.room(need) >= need || self.is_closed();
            if let Wait::TimedOut = self.wait_for(Side::Space, deadline, room)? {
                self.abort_put();
                return Err(Error::Full);
            }
            if self.is_closed() {
                self.abort_put();
                return Err(Error::Closed);
            }
            let n = self.room(total - done).min(total - done);
            let pos = start + done;
            // The piece [done, done + n) of header ++ bytes.
            let mut copied = 0;
            if done < hlen {
                let h = (hlen - done).min(n);
                self.copy_in(pos, &header[done as usize..(done + h) as usize]);
                copied = h;
            }
            if copied < n {
                let from = (done + copied - hlen) as usize;
                let to = (done + n - hlen) as usize;
                self.copy_in(pos + copied, &bytes[from..to]);
            }
            done += n;
            if done == total {
                self.bump(PUT_COUNT);
                self.pos(PUT_START).store(NONE, SeqCst);
            }
            self.pos(TAIL).store(pos + n, SeqCst);
            self.wake(Side::Data, false);
        }
        Ok(())
    }

    /// Marks the item a producer left half-way (by dying, or by running out
    /// of time) as aborted. The caller holds the producers' lock.
    fn abort_put(&self) {
        let start = self.pos(PUT_START).load(SeqCst);
        if start == NONE {
            return;
        }
        let tail = self.pos(TAIL).load(SeqCst);
        if tail > start {
            // Published before the mark: a consumer that sees the mark
            // knows where the item's bytes stop.
            self.pos(ABORT_AT).store(tail, SeqCst);
            self.pos(ABORTED).store(start, SeqCst);
            // With no consumer at work, the half item's room is given back
            // now: it may fill the ring, and the next put would wait for
            // a consumer to skip it. A consumer at work skips it itself
            // (only tried: a consumer holds its lock while it waits for
            // data, which only producers bring).
            if let Ok(Some(_consumers)) = self.map.lock(GET_LOCK, Some(Instant::now()))
                && self.pos(HEAD).load(SeqCst) == start
                && self.pos(GET_START).load(SeqCst) == NONE
            {
                self.pos(HEAD).store(tail, SeqCst);
            }
        }
        self.pos(PUT_START).store(NONE, SeqCst);
        self.wake(Side::Data, true);
    }

    fn send_fds(&self, seq: u64, fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> Result<()> {
        loop {
            match sys::socket::try_send_with_fds(self.fds_in.as_fd(), &seq.to_le_bytes(), fds) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sys::poll::wait_writable(self.fds_in.as_fd(), deadline)? {
                        return Err(Error::Full);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    // --- Consumers.

    /// Takes the next item, waiting until `deadline` at most for the
    /// consumers' lock and for an item. `Empty` if the time ran out,
    /// `Closed` if the queue is closed and empty.
    ///
    /// Once it has begun to read an item larger than the ring, it reads it
    /// to the end, past `deadline` if need be, for as long as its producer
    /// lives.
    pub(crate) fn get(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        bytes: &mut Vec<u8>,
    ) -> Result<Vec<OwnedFd>> {
        let Some(locked) = self.map.lock(GET_LOCK, deadline)? else { return Err(Error::Empty) };
        if locked.owner_died() || self.pos(GET_START).load(SeqCst) != NONE {
            self.finish_dead_get()?;
        }
        loop {
            let head = self.pos(HEAD).load(Relaxed);
            // Closed, and no producer is half-way through an item (it
            // would finish it, or abort it, and wake us).
            let over = || self.is_closed() && self.pos(PUT_START).load(SeqCst) == NONE;
            let data = || self.data(head, HEADER) > 0 || over();
            if let Wait::TimedOut = self.wait_for(Side::Data, deadline, data)? {
                return Err(Error::Empty);
            }
            let available = self.data(head, HEADER);
            if available == 0 {
                return Err(Error::Closed);
            }
            // Looked at after `TAIL` was read: a producer marks an item
            // aborted before it moves `TAIL` again.
            if self.pos(ABORTED).load(SeqCst) == head {
                // A producer stopped half-way through this item.
                self.pos(HEAD).store(self.pos(ABORT_AT).load(SeqCst), SeqCst);
                self.wake(Side::Space, false);
                continue;
            }
            let mut header = [0u8; FD_HEADER as usize];
            self.copy_out(head, &mut header[..HEADER as usize]);
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
            let flags = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
            let hlen = if flags & HAS_FDS != 0 { FD_HEADER } else { HEADER };
            // A header is published whole.
            self.copy_out(head + HEADER, &mut header[HEADER as usize..hlen as usize]);
            let fd_seq = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
            let total = hlen + u64::from(len);
            let fds = if flags & HAS_FDS != 0 { self.take_fds(fd_seq)? } else { Some(Vec::new()) };
            if self.data(head, total) >= total {
                bytes.clear();
                bytes.resize(len as usize, 0);
                self.copy_out(head + hlen, bytes);
                self.bump(GOT_COUNT);
                // The Dekker pair of `wait_for`, as in `put`.
                self.pos(HEAD).store(head + total, SeqCst);
                self.wake(Side::Space, false);
            } else {
                match self.stream_out(head, hlen, total, true)? {
                    Some(streamed) => *bytes = streamed,
                    None => continue,
                }
            }
            match fds {
                Some(fds) => return Ok(fds),
                // Its handles went with a consumer that died.
                None => continue,
            }
        }
    }

    /// Reads the item at `head` of `total` bytes (header included) as it is
    /// streamed in; `keep`: into a buffer, else only past it. `None` if its
    /// producer stopped half-way.
    fn stream_out(self: &Arc<Self>, head: u64, hlen: u64, total: u64, keep: bool) -> Result<Option<Vec<u8>>> {
        self.pos(GET_END).store(head + total, SeqCst);
        self.pos(GET_START).store(head, SeqCst);
        let mut bytes = if keep { Vec::with_capacity((total - hlen) as usize) } else { Vec::new() };
        let mut pos = self.pos(HEAD).load(SeqCst);
        let mut watched = false;
        let key = Arc::as_ptr(self) as usize;
        let result = loop {
            let end = head + total;
            if pos == end {
                self.bump(GOT_COUNT);
                break Some(bytes);
            }
            let tail = self.pos(TAIL).load(SeqCst);
            if self.pos(ABORTED).load(SeqCst) == head {
                let stop = self.pos(ABORT_AT).load(SeqCst);
                self.pos(HEAD).store(stop, SeqCst);
                self.wake(Side::Space, false);
                break None;
            }
            if tail > pos {
                let stop = tail.min(end);
                // The header is not part of the item's bytes.
                let from = pos.max(head + hlen);
                if keep && stop > from {
                    let old = bytes.len();
                    bytes.resize(old + (stop - from) as usize, 0);
                    self.copy_out(from, &mut bytes[old..]);
                }
                pos = stop;
                self.pos(HEAD).store(pos, SeqCst);
                self.wake(Side::Space, false);
                continue;
            }
            // The rest has not come yet: make sure its producer lives.
            if !watched {
                watched = true;
                self.watch_producer(key);
            }
            if self.producer_died() {
                continue;
            }
            let more = || {
                self.pos(TAIL).load(SeqCst) > pos
                    || self.pos(ABORTED).load(SeqCst) == head
                    || self.producer_gone.load(SeqCst)
            };
            self.wait_for(Side::Data, None, more)?;
        };
        if watched {
            watch::forget(key);
        }
        self.pos(GET_START).store(NONE, SeqCst);
        Ok(result)
    }

    /// Has the watcher thread wake this process's consumers when the
    /// producer of the item being streamed ends, so that they find it
    /// dead (see [`producer_died`](Ring::producer_died)).
    fn watch_producer(self: &Arc<Self>, key: usize) {
        let producer = Member {
            pid: self.pos(PUT_PID).load(SeqCst) as u32,
            start: self.pos(PUT_PID_START).load(SeqCst),
        };
        self.producer_gone.store(false, SeqCst);
        let weak = Arc::downgrade(self);
        let wake = Arc::new(move |_| {
            if let Some(ring) = weak.upgrade() {
                ring.producer_gone.store(true, SeqCst);
                ring.wake(Side::Data, true);
            }
        });
        // Gone already: the caller looks next.
        if let Some(pidfd) = producer.pidfd() {
            let _ = watch::watch(key, vec![(producer, pidfd)], wake);
        }
    }

    /// If the producer streaming an item died, aborts its item (as the
    /// next producer would) and says so.
    fn producer_died(&self) -> bool {
        // Looked into now: a later death sets it again.
        self.producer_gone.store(false, SeqCst);
        match self.map.lock(PUT_LOCK, Some(Instant::now())) {
            Ok(Some(locked)) => {
                if locked.owner_died() || self.pos(PUT_START).load(SeqCst) != NONE {
                    self.abort_put();
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// Skips the rest of the item a consumer was reading when it died.
    fn finish_dead_get(self: &Arc<Self>) -> Result<()> {
        let start = self.pos(GET_START).load(SeqCst);
        if start == NONE {
            return Ok(());
        }
        let end = self.pos(GET_END).load(SeqCst);
        // Nothing is kept: where the header ends does not matter.
        self.stream_out(start, HEADER, end - start, false)?;
        Ok(())
    }

    /// The fds of item `seq`: `None` if a consumer that died took them.
    fn take_fds(&self, seq: u64) -> Result<Option<Vec<OwnedFd>>> {
        loop {
            let mut id = [0u8; 8];
            let mut peeked = Vec::new();
            match sys::socket::peek_with_fds(self.fds_out.as_fd(), &mut id, &mut peeked) {
                Ok(8) => {}
                Ok(_) => return Err(Error::Codec("a malformed message among a queue's handles".into())),
                // Sent before the item was published: missing means taken.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            drop(peeked);
            let id = u64::from_le_bytes(id);
            if id > seq {
                return Ok(None);
            }
            let mut fds = Vec::new();
            sys::socket::recv_with_fds(self.fds_out.as_fd(), &mut id.to_le_bytes(), &mut fds, true)?;
            if id == seq {
                return Ok(Some(fds));
            }
            // The handles of an item its producer never published.
        }
    }

    // --- JoinableQueue.

    pub(crate) fn add_unfinished(&self) {
        self.word(UNFINISHED).fetch_add(1, SeqCst);
    }

    /// One item fewer to finish. False if none was unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let unfinished = self.word(UNFINISHED);
        let mut n = unfinished.load(SeqCst);
        loop {
            if n == 0 {
                return false;
            }
            match unfinished.compare_exchange(n, n - 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            self.wake(Side::Join, false);
        }
        true
    }

    pub(crate) fn unfinished(&self) -> u32 {
        self.word(UNFINISHED).load(SeqCst)
    }

    /// Waits until no item is unfinished. False if `deadline` came first.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> Result<bool> {
        let done = || self.word(UNFINISHED).load(SeqCst) == 0;
        Ok(matches!(self.wait_for(Side::Join, deadline, done)?, Wait::Ready))
    }
}
