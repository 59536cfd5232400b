//! `QueueProxy` and `JoinableQueueProxy`: queues held by the manager, for
//! processes that share no parent (a remote manager's clients).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client;
use super::server::{Access, Caller, Served, Waited, args, no_method, ret};
use crate::codec::Encoded;
use crate::error::{Error, Result};

pub(crate) const TYPEID: &str = "queue";
pub(crate) const JOINABLE_TYPEID: &str = "joinable_queue";

/// How a queue is made: its most items (0: no limit) and whether it counts
/// tasks done.
pub(crate) type Init = (u64, bool);

macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident, $typeid:expr) => {
        proxy!($(#[$doc])* $name<T>, $typeid);

        impl<T: Serialize + DeserializeOwned> $name<T> {
            /// Puts `item` at the back, waiting for room in a bounded queue.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone; [`Error::Codec`]
            /// if the item does not encode (or holds handles and the
            /// manager is on TCP).
            pub fn put(&self, item: T) -> Result<()> {
                self.put_until(item, None)
            }

            /// Puts `item` if there is room now: [`Error::Full`] if not.
            ///
            /// # Errors
            ///
            /// As [`put`](Self::put), and [`Error::Full`].
            pub fn try_put(&self, item: T) -> Result<()> {
                self.put_until(item, Some(Duration::ZERO))
            }

            /// Puts `item`, waiting at most `timeout` for room.
            ///
            /// # Errors
            ///
            /// As [`try_put`](Self::try_put).
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
                self.put_until(item, Some(timeout))
            }

            fn put_until(&self, item: T, timeout: Option<Duration>) -> Result<()> {
                self.object.call("put", &(client::value(&item)?, timeout))
            }

            /// Takes the item at the front, waiting for one.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone; [`Error::Codec`]
            /// if the item is not a `T`.
            pub fn get(&self) -> Result<T> {
                self.get_until(None)
            }

            /// Takes an item if there is one now: [`Error::Empty`] if not.
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get), and [`Error::Empty`].
            pub fn try_get(&self) -> Result<T> {
                self.get_until(Some(Duration::ZERO))
            }

            /// Takes an item, waiting at most `timeout` for one.
            ///
            /// # Errors
            ///
            /// As [`try_get`](Self::try_get).
            pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
                self.get_until(Some(timeout))
            }

            fn get_until(&self, timeout: Option<Duration>) -> Result<T> {
                // The answer is the item as it was put.
                self.object.call("get", &timeout)
            }

            /// The number of items (exact: the manager holds them all).
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone.
            pub fn len(&self) -> Result<usize> {
                self.object.len()
            }

            /// Whether the queue holds no items.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone.
            pub fn is_empty(&self) -> Result<bool> {
                Ok(self.len()? == 0)
            }

            /// Whether a bounded queue holds as many items as it may.
            ///
            /// # Errors
            ///
            /// [`Error::Closed`] if the manager is gone.
            pub fn is_full(&self) -> Result<bool> {
                self.object.call("is_full", &())
            }
        }
    };
}

proxy_type!(
    /// A proxy of a queue of `T` held by a [`Manager`](crate::Manager)
    /// (Python's `manager.Queue()`): for processes that reach the manager
    /// by address, which cannot share a [`Queue`](crate::Queue). Between
    /// a parent and its children, a `Queue` is much faster.
    ///
    /// A `get` whose caller is gone before the item is sent to it puts the
    /// item back at the front (over TCP the server may learn of a dead
    /// peer only after sending, and then the item is lost with it); a `get`
    /// or `put` that waits gives up when its caller goes.
    QueueProxy,
    TYPEID
);

proxy_type!(
    /// A [`QueueProxy`] that also counts unfinished tasks (Python's
    /// `manager.JoinableQueue()`): every `put` adds one, every
    /// [`task_done`](JoinableQueueProxy::task_done) takes one away, and
    /// [`join`](JoinableQueueProxy::join) waits for none to be left.
    JoinableQueueProxy,
    JOINABLE_TYPEID
);

impl<T: Serialize + DeserializeOwned> JoinableQueueProxy<T> {
    /// Marks one task taken from the queue as done.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if there are more `task_done` calls than items put;
    /// [`Error::Closed`] if the manager is gone.
    pub fn task_done(&self) -> Result<()> {
        self.object.call("task_done", &())
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn join(&self) -> Result<()> {
        self.object.call("join", &None::<Duration>)
    }

    /// Waits at most `timeout` for every item put to be marked done;
    /// whether they were.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        match self.object.call("join", &Some(timeout)) {
            Ok(()) => Ok(true),
            Err(Error::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The queue in the server.
pub(crate) struct QueueState {
    inner: Mutex<Inner>,
    changed: Condvar,
    maxsize: usize,
    joinable: bool,
}

struct Inner {
    items: VecDeque<Encoded>,
    unfinished: u64,
}

impl QueueState {
    pub(crate) fn new((maxsize, joinable): Init) -> QueueState {
        QueueState {
            inner: Mutex::new(Inner { items: VecDeque::new(), unfinished: 0 }),
            changed: Condvar::new(),
            maxsize: usize::try_from(maxsize).unwrap_or(usize::MAX),
            joinable,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn full(&self, inner: &Inner) -> bool {
        self.maxsize > 0 && inner.items.len() >= self.maxsize
    }
}

impl Served for QueueState {
    fn access(&self, method: &str) -> Option<Access> {
        match method {
            "put" | "get" | "len" | "is_full" => Some(Access::Shared),
            "task_done" | "join" if self.joinable => Some(Access::Shared),
            _ => None,
        }
    }

    fn call(&self, method: &str, a: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        match method {
            "put" => {
                let (item, timeout): (Encoded, Option<Duration>) = args(a)?;
                let room = |inner: &mut Inner| (!self.full(inner)).then_some(());
                match caller.wait_for(self.lock(), &self.changed, timeout, room) {
                    (mut inner, Waited::Ready(())) => {
                        inner.items.push_back(item);
                        inner.unfinished += 1;
                        self.changed.notify_all();
                        ret(&())
                    }
                    (_, Waited::TimedOut) => Err(Error::Full),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            "get" => {
                let timeout: Option<Duration> = args(a)?;
                match caller.wait_for(self.lock(), &self.changed, timeout, |inner| inner.items.pop_front()) {
                    (_, Waited::Ready(item)) => {
                        self.changed.notify_all();
                        Ok(item)
                    }
                    (_, Waited::TimedOut) => Err(Error::Empty),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            "len" => ret(&(self.lock().items.len() as u64)),
            "is_full" => ret(&self.full(&self.lock())),
            "task_done" => {
                let mut inner = self.lock();
                if inner.unfinished == 0 {
                    return Err(Error::invalid_input("task_done() called too many times"));
                }
                inner.unfinished -= 1;
                self.changed.notify_all();
                ret(&())
            }
            "join" => {
                let timeout: Option<Duration> = args(a)?;
                let none_left = |inner: &mut Inner| (inner.unfinished == 0).then_some(());
                match caller.wait_for(self.lock(), &self.changed, timeout, none_left) {
                    (_, Waited::Ready(())) => ret(&()),
                    (_, Waited::TimedOut) => Err(Error::Timeout),
                    (_, Waited::Gone) => Err(Error::Closed),
                }
            }
            _ => Err(no_method(TYPEID, method)),
        }
    }

    fn reply_lost(&self, method: &str, reply: Encoded) {
        if method == "get" {
            // Back where it was: the next `get` takes it.
            self.lock().items.push_front(reply);
            self.changed.notify_all();
        }
    }
}
