//! Queues across processes: [`Queue`], [`SimpleQueue`] and
//! [`JoinableQueue`], Python's `multiprocessing` queues without the feeder
//! thread.
//!
//! Every handle maps one shared ring (see `ring.rs`). `put` encodes the
//! item and copies it into the ring before it returns, so the item is in
//! the queue for every process at that moment: a process may exit right
//! after `put`, or be killed, and the item stays. There is no private
//! buffer to flush at exit and no thread to join (CPython's QUEUE-18 and
//! QUEUE-19). An item that cannot be encoded is an error from `put`,
//! and the queue is untouched (QUEUE-10).

mod ring;

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, RecvFd, SendFd};
use crate::error::{Error, Result};
use ring::Ring;

thread_local! {
    /// The buffer a thread encodes into and copies out to, kept between
    /// calls: no allocation per item.
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's buffer (a new one late in the thread's life, when its
/// thread-locals are gone).
fn take_buffer() -> Vec<u8> {
    BUFFER.try_with(std::cell::Cell::take).unwrap_or_default()
}

/// Keeps `bytes` as the thread's buffer, unless it grew large (a big item
/// should not pin its memory).
fn keep_buffer(bytes: Vec<u8>) {
    if bytes.capacity() <= 64 << 10 {
        let _ = BUFFER.try_with(|b| b.set(bytes));
    }
}

/// A first-in first-out queue shared by processes and threads: Python's
/// `multiprocessing.Queue`.
///
/// Any number of processes may put and get at once; items from one
/// producer come out in the order it put them. A handle is `Clone` (another
/// handle to the same queue) and can be passed to a remote fn, sent through
/// a pipe or put in another queue.
///
/// ```
/// #[multiproc::remote]
/// fn produce(q: multiproc::Queue<String>, n: u32) {
///     for i in 0..n {
///         q.put(format!("item {i}")).unwrap();
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let q = multiproc::Queue::new()?;
/// multiproc::spawn(produce, (q.clone(), 3))?.join()?;
/// assert_eq!(q.len(), 3);
/// assert_eq!(q.get()?, "item 0");
/// # Ok(())
/// # }
/// ```
///
/// # Size
///
/// The items live in a ring of shared memory, 1 MiB unless
/// [`QueueBuilder::ring_bytes`] says otherwise; its pages are made as they
/// are first written. An item of any size can be put: one larger than the
/// free space goes in piece by piece as consumers take it out, so a put of
/// an item larger than the ring waits for a consumer. A [`bounded`]
/// queue also limits the number of items, as Python's `maxsize` does.
///
/// [`bounded`]: Queue::bounded
///
/// # Robustness
///
/// A process killed in the middle of a `put` leaves no part of its item
/// behind; one killed in the middle of a `get` leaves the item to the next
/// consumer (or, for an item larger than the ring, whose first pieces it
/// had taken, loses that item only). Either way the queue goes on working
/// for the others.
pub struct Queue<T> {
    ring: Arc<Ring>,
    _items: PhantomData<fn(T) -> T>,
}

/// Sets the size of a queue's ring and its item limit: from
/// [`Queue::builder`].
pub struct QueueBuilder<T> {
    ring_bytes: usize,
    maxsize: u32,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for QueueBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("ring_bytes", &self.ring_bytes)
            .field("maxsize", &self.maxsize)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> QueueBuilder<T> {
    /// The bytes of the ring the items go through (1 MiB by default; at
    /// least 64).
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// At most `maxsize` items at once: a put waits for room (0: no limit,
    /// the default).
    pub fn maxsize(mut self, maxsize: u32) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// The queue.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for a ring under 64 bytes, or if the
    /// system gives no shared memory.
    pub fn build(self) -> Result<Queue<T>> {
        Ok(Queue { ring: Arc::new(Ring::create(self.ring_bytes, self.maxsize)?), _items: PhantomData })
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue with no limit on the number of items.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new() -> Result<Self> {
        Queue::builder().build()
    }

    /// A queue of at most `maxsize` items (Python's `Queue(maxsize)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for a `maxsize` of 0 or above
    /// `u32::MAX`; or as [`new`](Queue::new).
    pub fn bounded(maxsize: usize) -> Result<Self> {
        let maxsize = u32::try_from(maxsize)
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| Error::invalid_input(format!("a queue bounded to {maxsize} items")))?;
        Queue::builder().maxsize(maxsize).build()
    }

    /// The way to set the ring's size.
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder { ring_bytes: ring::DEFAULT_CAPACITY, maxsize: 0, _items: PhantomData }
    }

    /// Puts `item` at the end, waiting for room if the queue is bounded and
    /// full (or the item is larger than the free space).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the queue is closed; [`Error::Codec`] if the
    /// item cannot be encoded (the queue is unchanged).
    pub fn put(&self, item: T) -> Result<()> {
        self.put_until(item, None)
    }

    /// Puts `item` only if there is room now: [`Error::Full`] otherwise.
    ///
    /// # Errors
    ///
    /// As [`put`](Queue::put), and [`Error::Full`].
    pub fn try_put(&self, item: T) -> Result<()> {
        self.put_until(item, Some(Instant::now()))
    }

    /// Puts `item`, waiting at most `timeout` for room: [`Error::Full`]
    /// after that (and none of the item is in the queue).
    ///
    /// # Errors
    ///
    /// As [`try_put`](Queue::try_put).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.put_until(item, Some(Instant::now() + timeout))
    }

    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<()> {
        if self.ring.is_closed() {
            return Err(Error::Closed);
        }
        let encoded = codec::encode_into(&item, take_buffer())?;
        let fds: Vec<_> = encoded.fds.iter().map(AsFd::as_fd).collect();
        let put = self.ring.put(&encoded.bytes, &fds, deadline);
        keep_buffer(encoded.bytes);
        put
    }

    /// Takes the first item, waiting for one.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the queue is closed and empty;
    /// [`Error::Codec`] if the item does not decode as a `T`.
    pub fn get(&self) -> Result<T> {
        self.get_until(None)
    }

    /// Takes the first item if there is one now: [`Error::Empty`]
    /// otherwise.
    ///
    /// # Errors
    ///
    /// As [`get`](Queue::get), and [`Error::Empty`].
    pub fn try_get(&self) -> Result<T> {
        self.get_until(Some(Instant::now()))
    }

    /// Takes the first item, waiting at most `timeout`: [`Error::Empty`]
    /// after that.
    ///
    /// An item larger than the ring that is half-way in when the time runs
    /// out is read to its end (its producer is putting it in), so the call
    /// may return later than `timeout` rather than lose it.
    ///
    /// # Errors
    ///
    /// As [`try_get`](Queue::try_get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_until(Some(Instant::now() + timeout))
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T> {
        let mut bytes = take_buffer();
        let got = self.ring.get(deadline, &mut bytes).and_then(|fds| codec::decode_slice(&bytes, fds));
        keep_buffer(bytes);
        got
    }

    /// An iterator that takes items as they come, and ends once the queue
    /// is closed and empty (or an item does not decode: [`get`](Queue::get)
    /// says why).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self, deadline: None }
    }

    /// An iterator over the items in the queue now: it ends when the queue
    /// is empty.
    pub fn try_iter(&self) -> Iter<'_, T> {
        Iter { queue: self, deadline: Some(Instant::now()) }
    }
}

impl<T> Queue<T> {
    /// The number of items in the queue, as every process sees it at this
    /// moment (Python's `qsize()`, exact: QUEUE-06, QUEUE-19).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True if the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the queue is bounded and holds its maximum.
    pub fn is_full(&self) -> bool {
        self.capacity().is_some_and(|max| self.len() >= max)
    }

    /// The most items it holds, if bounded.
    pub fn capacity(&self) -> Option<usize> {
        let max = self.ring.maxsize();
        (max > 0).then_some(max as usize)
    }

    /// Closes the queue, for every handle in every process: a later `put`
    /// gives [`Error::Closed`]; `get` takes the items left, then gives
    /// [`Error::Closed`]. Waiting calls wake up to see it.
    pub fn close(&self) {
        self.ring.close();
    }

    /// True once some handle closed the queue.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }
}

/// The items of a [`Queue`]: see [`Queue::iter`] and [`Queue::try_iter`].
pub struct Iter<'a, T> {
    queue: &'a Queue<T>,
    /// `Some`: take only what is there by then.
    deadline: Option<Instant>,
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("queue", self.queue)
            .field("drains_only", &self.deadline.is_some())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.get_until(self.deadline.map(|_| Instant::now())).ok()
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        Queue { ring: self.ring.clone(), _items: PhantomData }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("maxsize", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let [segment, fds_in, fds_out] = self.ring.fds();
        (SendFd(segment), SendFd(fds_in), SendFd(fds_out)).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (RecvFd(segment), RecvFd(fds_in), RecvFd(fds_out)) = Deserialize::deserialize(deserializer)?;
        let ring = Ring::open(segment, fds_in, fds_out).map_err(codec::de_error)?;
        Ok(Queue { ring: Arc::new(ring), _items: PhantomData })
    }
}

/// A queue with only `put`, `get`, `is_empty` and `close`: Python's
/// `multiprocessing.SimpleQueue`. It is a [`Queue`] underneath, with no
/// limit.
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn new() -> Result<Self> {
        Ok(SimpleQueue { queue: Queue::new()? })
    }

    /// As [`Queue::put`].
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn put(&self, item: T) -> Result<()> {
        self.queue.put(item)
    }

    /// As [`Queue::get`].
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T> {
        self.queue.get()
    }
}

impl<T> SimpleQueue<T> {
    /// True if the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// As [`Queue::close`]; closing twice is harmless (QUEUE-17).
    pub fn close(&self) {
        self.queue.close();
    }
}

/// A [`Queue`] that counts the items not yet done: Python's
/// `multiprocessing.JoinableQueue`. Each `put` adds one; each
/// [`task_done`](JoinableQueue::task_done) takes one away;
/// [`join`](JoinableQueue::join) waits until none is left.
///
/// It dereferences to its [`Queue`] for everything else (`get`, `len`,
/// `close`, ...).
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A queue with no limit on the number of items.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn new() -> Result<Self> {
        Ok(JoinableQueue { queue: Queue::new()? })
    }

    /// A queue of at most `maxsize` items.
    ///
    /// # Errors
    ///
    /// As [`Queue::bounded`].
    pub fn bounded(maxsize: usize) -> Result<Self> {
        Ok(JoinableQueue { queue: Queue::bounded(maxsize)? })
    }

    /// As [`Queue::put`], and one more item to be done.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn put(&self, item: T) -> Result<()> {
        self.counted(|q| q.put(item))
    }

    /// As [`Queue::try_put`], and one more item to be done.
    ///
    /// # Errors
    ///
    /// As [`Queue::try_put`].
    pub fn try_put(&self, item: T) -> Result<()> {
        self.counted(|q| q.try_put(item))
    }

    /// As [`Queue::put_timeout`], and one more item to be done.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_timeout`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.counted(|q| q.put_timeout(item, timeout))
    }

    /// Counts the item before it is visible, so that a consumer's
    /// `task_done` never comes before it; takes it back if the put fails.
    fn counted(&self, put: impl FnOnce(&Queue<T>) -> Result<()>) -> Result<()> {
        self.queue.ring.add_unfinished();
        put(&self.queue).inspect_err(|_| {
            self.queue.ring.task_done();
        })
    }
}

impl<T> JoinableQueue<T> {
    /// Marks one item taken from the queue as done.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) if every item put is done already:
    /// `task_done` was called too many times (QUEUE-08).
    pub fn task_done(&self) -> Result<()> {
        if self.queue.ring.task_done() {
            Ok(())
        } else {
            Err(Error::invalid_input("task_done() called too many times"))
        }
    }

    /// The items put and not yet marked done.
    pub fn unfinished(&self) -> usize {
        self.queue.ring.unfinished() as usize
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if waiting fails.
    pub fn join(&self) -> Result<()> {
        self.queue.ring.join(None).map(drop)
    }

    /// Waits at most `timeout` for every item to be done: false if some
    /// are still not done then.
    ///
    /// # Errors
    ///
    /// As [`join`](JoinableQueue::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.queue.ring.join(Some(Instant::now() + timeout))
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

/// `Clone`, `Debug` and serde for the wrappers, through their queue.
macro_rules! queue_wrapper {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name { queue: self.queue.clone() }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.queue).finish()
            }
        }

        impl<T> Serialize for $name<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                self.queue.serialize(serializer)
            }
        }

        impl<'de, T> Deserialize<'de> for $name<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                Ok($name { queue: Queue::deserialize(deserializer)? })
            }
        }
    };
}

queue_wrapper!(SimpleQueue);
queue_wrapper!(JoinableQueue);
