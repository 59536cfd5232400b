//! Where a pool's results land: [`AsyncResult`], the imap iterators, and
//! the collector that turns a job's chunks back into per-item results.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, SeqAccess, VariantAccess, Visitor,
};

use crate::codec::{self, Encoded};
use crate::error::{Error, RemoteError, Result};
use crate::registry::{ChunkResults, ItemResult};

/// How a task (one chunk of calls) ended without results.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The worker running it died.
    Died { pid: u32, exitcode: i32 },
    /// It ran longer than the pool's task timeout; its worker was killed.
    Timeout,
    /// The pool was terminated before it ran.
    Closed,
    /// The worker could not run it: an unknown fn, or arguments or results
    /// that did not decode or encode.
    Codec(String),
    /// The pool's initializer failed, so no worker can run anything.
    InitFailed(RemoteError),
    /// No worker could be started.
    NoWorkers(String),
}

impl Failure {
    fn to_error(&self) -> Error {
        match self {
            Failure::Died { pid, exitcode } => Error::ProcessDied { pid: *pid, exitcode: *exitcode },
            Failure::Timeout => Error::Timeout,
            Failure::Closed => Error::Closed,
            Failure::Codec(message) => Error::Codec(message.clone()),
            Failure::InitFailed(e) => Error::Remote(e.clone()),
            Failure::NoWorkers(message) => {
                Error::Io(std::io::Error::other(format!("the pool could not start a worker: {message}")))
            }
        }
    }
}

/// A job as the scheduler sees it: something that takes the outcome of
/// each of its chunks.
pub(crate) trait Job: Send + Sync {
    /// Chunk `index` ran in worker `pid`; its encoded results are in
    /// `reply` from `offset` on.
    fn chunk_done(&self, index: usize, reply: Encoded, offset: usize, pid: u32);
    /// Chunk `index` did not run to the end.
    fn chunk_failed(&self, index: usize, failure: &Failure);
    /// Wakes whoever waits for the results stored since the last wake-up:
    /// the scheduler stores a batch of answers, then wakes once.
    fn wake(&self);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What runs when every result of a job is in: every value in input
/// order, or the first error in input order.
pub(crate) type Finish<R> = Box<dyn FnOnce(Result<Vec<R>>) + Send>;

/// The results of one chunk, handed out in order.
enum Items<R> {
    /// Every call returned.
    Values(std::vec::IntoIter<R>),
    /// Some calls failed.
    Mixed(std::vec::IntoIter<Result<R>>),
}

impl<R> Iterator for Items<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        match self {
            Items::Values(values) => values.next().map(Ok),
            Items::Mixed(results) => results.next(),
        }
    }
}

/// Collects the results of a job's chunks.
pub(crate) struct Collector<R> {
    function: &'static str,
    len: usize,
    chunk_size: usize,
    state: Mutex<Collected<R>>,
    arrived: Condvar,
    finish: Mutex<Option<Finish<R>>>,
    /// For a job with a [`Finish`]: its results, assembled in input order
    /// as the chunks come.
    assembly: Mutex<Option<Assembly<R>>>,
}

/// The results of a job wanted whole (`map`, `apply`): decoded straight
/// into one `Vec`, in input order; a chunk that comes before its turn waits
/// undecoded.
struct Assembly<R> {
    values: Vec<R>,
    /// The chunk whose turn it is.
    next: usize,
    waiting: std::collections::BTreeMap<usize, Answer>,
    /// The first error in input order, once found.
    error: Option<Error>,
}

/// A chunk's answer, not decoded yet.
enum Answer {
    Reply(Encoded, usize, u32),
    Failed(Error),
}

struct Collected<R> {
    /// Each chunk's results, once in.
    done: Vec<Option<Items<R>>>,
    /// Threads waiting in [`Collector::wait_for`]: [`Job::wake`] wakes
    /// them only if there are any (a wake-up is a system call).
    waiting: usize,
    /// Chunks in the order their results arrived, for `imap_unordered`.
    order: std::collections::VecDeque<usize>,
}

impl<R> Collector<R> {
    /// A collector for `len` items cut into chunks of `chunk_size`.
    pub(crate) fn new(function: &'static str, len: usize, chunk_size: usize) -> Self {
        let chunk_size = chunk_size.max(1);
        let chunks = len.div_ceil(chunk_size);
        Collector {
            function,
            len,
            chunk_size,
            state: Mutex::new(Collected {
                done: (0..chunks).map(|_| None).collect(),
                waiting: 0,
                order: std::collections::VecDeque::new(),
            }),
            arrived: Condvar::new(),
            finish: Mutex::new(None),
            assembly: Mutex::new(None),
        }
    }

    /// The items of each chunk.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.len).step_by(self.chunk_size).map(|s| s..(s + self.chunk_size).min(self.len))
    }

    fn chunk_len(&self, index: usize) -> usize {
        (self.len - index * self.chunk_size).min(self.chunk_size)
    }

    /// Sets what runs once every result is in (at once if there are none).
    /// Call it before any chunk is sent.
    pub(crate) fn set_finish(&self, finish: Finish<R>) {
        if self.len == 0 {
            finish(Ok(Vec::new()));
            return;
        }
        *lock(&self.finish) = Some(finish);
        *lock(&self.assembly) = Some(Assembly {
            values: Vec::with_capacity(self.len),
            next: 0,
            waiting: std::collections::BTreeMap::new(),
            error: None,
        });
    }

    /// Takes chunk `index`'s answer into the assembly; true if the job has
    /// one (else the answer is for the per-chunk store).
    fn assemble(&self, index: usize, answer: Answer) -> bool
    where
        R: DeserializeOwned,
    {
        let mut guard = lock(&self.assembly);
        let Some(assembly) = guard.as_mut() else { return false };
        assembly.waiting.insert(index, answer);
        while let Some(answer) = assembly.waiting.remove(&assembly.next) {
            let len = self.chunk_len(assembly.next);
            assembly.next += 1;
            if assembly.error.is_some() {
                continue; // the result is that error; the rest only has to come
            }
            assembly.error = match answer {
                Answer::Failed(e) => Some(e),
                Answer::Reply(reply, offset, pid) => {
                    self.append(&mut assembly.values, len, reply, offset, pid).err()
                }
            };
        }
        if assembly.next == self.chunk_count() {
            let assembly = guard.take().expect("an assembly");
            drop(guard);
            if let Some(finish) = lock(&self.finish).take() {
                finish(match assembly.error {
                    Some(e) => Err(e),
                    None => Ok(assembly.values),
                });
            }
        }
        true
    }

    /// Decodes a chunk of `len` results into `values`, in place; the first
    /// error among them, if any.
    fn append(&self, values: &mut Vec<R>, len: usize, reply: Encoded, offset: usize, pid: u32) -> Result<()>
    where
        R: DeserializeOwned,
    {
        let before = values.len();
        let decoded = codec::decode_seed_at(reply, offset, AppendOk(values))
            .map_err(|e| Error::Codec(format!("the results of `{}` did not decode: {e}", self.function)));
        let each = match decoded {
            Ok(None) if values.len() - before == len => return Ok(()),
            Ok(Some(each)) if each.len() == len => each,
            Ok(_) => {
                return Err(Error::Codec(format!(
                    "a worker returned the wrong number of results for a chunk of {len} calls"
                )));
            }
            Err(e) => return Err(e),
        };
        for item in each {
            match item {
                Ok(v) => values.push(v),
                Err(p) => {
                    return Err(Error::Remote(RemoteError {
                        function: self.function.to_owned(),
                        message: p.message,
                        pid,
                        location: p.location,
                    }));
                }
            }
        }
        Ok(())
    }

    fn chunk_count(&self) -> usize {
        self.len.div_ceil(self.chunk_size)
    }

    fn store(&self, index: usize, items: Items<R>) {
        {
            let mut state = lock(&self.state);
            if state.done[index].is_some() {
                return;
            }
            state.done[index] = Some(items);
            state.order.push_back(index);
        }
    }

    /// Waits until `pick` finds something in the collected state, or the
    /// deadline passes (`None` then).
    fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut pick: impl FnMut(&mut Collected<R>) -> Option<T>,
    ) -> Option<T> {
        let mut state = lock(&self.state);
        loop {
            if let Some(found) = pick(&mut state) {
                return Some(found);
            }
            let left = match deadline {
                None => None,
                Some(d) => Some(d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero())?),
            };
            state.waiting += 1;
            state = match left {
                None => self.arrived.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.arrived.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
            state.waiting -= 1;
        }
    }
}

impl<R: DeserializeOwned + Send> Job for Collector<R> {
    fn chunk_done(&self, index: usize, reply: Encoded, offset: usize, pid: u32) {
        if lock(&self.assembly).is_some() {
            self.assemble(index, Answer::Reply(reply, offset, pid));
            return;
        }
        let len = self.chunk_len(index);
        let items = match codec::decode_at::<ChunkResults<R>>(reply, offset) {
            Ok(Ok(values)) if values.len() == len => Items::Values(values.into_iter()),
            Ok(Err(results)) if results.len() == len => {
                let function = self.function;
                let results: Vec<Result<R>> = results
                    .into_iter()
                    .map(|item| {
                        item.map_err(|p| {
                            Error::Remote(RemoteError {
                                function: function.to_owned(),
                                message: p.message,
                                pid,
                                location: p.location,
                            })
                        })
                    })
                    .collect();
                Items::Mixed(results.into_iter())
            }
            Ok(_) => errors(
                len,
                &Error::Codec(format!(
                    "a worker returned the wrong number of results for a chunk of {len} calls"
                )),
            ),
            Err(e) => {
                errors(len, &Error::Codec(format!("the results of `{}` did not decode: {e}", self.function)))
            }
        };
        self.store(index, items);
    }

    fn chunk_failed(&self, index: usize, failure: &Failure) {
        if lock(&self.assembly).is_some() {
            self.assemble(index, Answer::Failed(failure.to_error()));
            return;
        }
        let len = self.chunk_len(index);
        self.store(index, errors(len, &failure.to_error()));
    }

    fn wake(&self) {
        if lock(&self.state).waiting > 0 {
            self.arrived.notify_all();
        }
    }
}

/// `len` copies of `error`.
fn errors<R>(len: usize, error: &Error) -> Items<R> {
    Items::Mixed((0..len).map(|_| Err(error.duplicate())).collect::<Vec<_>>().into_iter())
}

/// The result of a call handed to the pool, to be collected later:
/// Python's `AsyncResult`. Also a [`Future`], for async code.
///
/// Callbacks given with the call (see
/// [`Pool::apply_async_with`](crate::Pool::apply_async_with)) have run by
/// the time the result is ready.
pub struct AsyncResult<R> {
    cell: Arc<ResultCell<R>>,
}

pub(crate) struct ResultCell<R> {
    state: Mutex<CellState<R>>,
    ready: Condvar,
}

struct CellState<R> {
    result: Option<Result<R>>,
    taken: bool,
    waker: Option<Waker>,
}

impl<R> ResultCell<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ResultCell {
            state: Mutex::new(CellState { result: None, taken: false, waker: None }),
            ready: Condvar::new(),
        })
    }

    pub(crate) fn complete(&self, result: Result<R>) {
        let waker = {
            let mut state = lock(&self.state);
            state.result = Some(result);
            state.waker.take()
        };
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> MutexGuard<'_, CellState<R>> {
        let mut state = lock(&self.state);
        while state.result.is_none() && !state.taken {
            match deadline {
                None => state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(d) => match d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                    Some(left) => {
                        state =
                            self.ready.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
                    }
                    None => break,
                },
            }
        }
        state
    }
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(cell: Arc<ResultCell<R>>) -> Self {
        AsyncResult { cell }
    }

    /// Waits for the result and returns it, consuming the handle.
    ///
    /// # Errors
    ///
    /// The call's error: [`Error::Remote`] if it panicked,
    /// [`Error::ProcessDied`] if its worker died, [`Error::Timeout`] if it
    /// ran past the pool's task timeout, [`Error::Closed`] if the pool was
    /// terminated first.
    pub fn into_result(self) -> Result<R> {
        let mut state = self.cell.wait_until(None);
        state.taken = true;
        state.result.take().unwrap_or(Err(Error::Closed))
    }

    /// Waits until the result is ready.
    pub fn wait(&self) {
        drop(self.cell.wait_until(None));
    }

    /// Waits until the result is ready, for at most `timeout`; true if it
    /// is.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.cell.wait_until(Some(Instant::now() + timeout)).result.is_some()
    }

    /// True once the result is ready.
    pub fn ready(&self) -> bool {
        lock(&self.cell.state).result.is_some()
    }

    /// `Some(true)` if the call returned, `Some(false)` if it failed,
    /// `None` while it is not ready.
    pub fn successful(&self) -> Option<bool> {
        lock(&self.cell.state).result.as_ref().map(Result::is_ok)
    }
}

impl<R: Clone> AsyncResult<R> {
    /// Waits for the result and returns a copy of it.
    ///
    /// # Errors
    ///
    /// As [`into_result`](AsyncResult::into_result).
    pub fn get(&self) -> Result<R> {
        let state = self.cell.wait_until(None);
        copy(&state.result)
    }

    /// Like [`get`](AsyncResult::get), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the result is not ready in time (the handle
    /// stays usable); otherwise as [`get`](AsyncResult::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        let state = self.cell.wait_until(Some(Instant::now() + timeout));
        match &state.result {
            None => Err(Error::Timeout),
            result => copy(result),
        }
    }
}

fn copy<R: Clone>(result: &Option<Result<R>>) -> Result<R> {
    match result {
        Some(Ok(v)) => Ok(v.clone()),
        Some(Err(e)) => Err(e.duplicate()),
        None => Err(Error::Closed),
    }
}

impl<R> Future for AsyncResult<R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        let mut state = lock(&self.cell.state);
        match state.result.take() {
            Some(result) => {
                state.taken = true;
                Poll::Ready(result)
            }
            None if state.taken => Poll::Ready(Err(Error::Closed)),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

/// The results of [`Pool::imap`](crate::Pool::imap) or
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered), as they come: in
/// input order for `imap`, in the order they finish for
/// `imap_unordered`. Its length is known from the start.
pub struct IMap<R> {
    collector: Arc<Collector<R>>,
    yielded: usize,
    len: usize,
    ordered: bool,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl<R> IMap<R> {
    pub(crate) fn new(collector: Arc<Collector<R>>, len: usize, ordered: bool) -> Self {
        IMap {
            collector,
            yielded: 0,
            len,
            ordered,
            #[cfg(feature = "progress")]
            bar: None,
        }
    }

    /// Shows a progress bar on stderr that advances as results are taken,
    /// when stderr is a terminal (nothing is drawn otherwise). Needs the
    /// `progress` feature.
    ///
    /// ```no_run
    /// # #[multiproc::remote]
    /// # fn square(x: u64) -> u64 { x * x }
    /// # fn main() -> multiproc::Result<()> {
    /// let pool = multiproc::Pool::new(4)?;
    /// let squares: Vec<u64> =
    ///     pool.imap(square, 0..100_000)?.with_progress().collect::<multiproc::Result<_>>()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "progress")]
    pub fn with_progress(mut self) -> Self {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(self.len as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_position(self.yielded as u64);
        self.bar = Some(bar);
        self
    }

    /// The next result, waiting at most `timeout` for it: `Some(Err(Error::Timeout))`
    /// if it did not come in time (the iterator stays usable), `None` at
    /// the end. Python's `IMapIterator.next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_before(Some(Instant::now() + timeout))
    }

    fn next_before(&mut self, deadline: Option<Instant>) -> Option<Result<R>> {
        if self.yielded == self.len {
            return None;
        }
        let ordered = self.ordered;
        let chunk = self.yielded / self.collector.chunk_size;
        let found = self.collector.wait_for(deadline, |state| {
            if ordered {
                return state.done[chunk].as_mut()?.next();
            }
            loop {
                let first = *state.order.front()?;
                match state.done[first].as_mut().and_then(Iterator::next) {
                    Some(result) => return Some(result),
                    None => {
                        state.order.pop_front();
                    }
                }
            }
        });
        match found {
            Some(result) => {
                self.yielded += 1;
                #[cfg(feature = "progress")]
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    if self.yielded == self.len {
                        bar.finish();
                    }
                }
                Some(result)
            }
            None => Some(Err(Error::Timeout)),
        }
    }
}

impl<R> Iterator for IMap<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        self.next_before(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.yielded;
        (left, Some(left))
    }
}

impl<R> ExactSizeIterator for IMap<R> {}

impl<R> fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap").field("yielded", &self.yielded).field("len", &self.len).finish()
    }
}

/// Decodes a chunk's `ChunkResults<R>`: its values appended to a `Vec`
/// when every call returned (`None`), else each call's result.
struct AppendOk<'a, R>(&'a mut Vec<R>);

impl<'de, R: Deserialize<'de>> DeserializeSeed<'de> for AppendOk<'_, R> {
    type Value = Option<Vec<ItemResult<R>>>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_enum("Result", &["Ok", "Err"], self)
    }
}

impl<'de, R: Deserialize<'de>> Visitor<'de> for AppendOk<'_, R> {
    type Value = Option<Vec<ItemResult<R>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk's results")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> std::result::Result<Self::Value, A::Error> {
        match data.variant::<u32>()? {
            (0, values) => values.newtype_variant_seed(AppendSeq(self.0)).map(|()| None),
            (1, each) => each.newtype_variant().map(Some),
            (other, _) => Err(serde::de::Error::custom(format!("no Result variant {other}"))),
        }
    }
}

/// Appends the elements of a sequence to a `Vec`.
struct AppendSeq<'a, R>(&'a mut Vec<R>);

impl<'de, R: Deserialize<'de>> DeserializeSeed<'de> for AppendSeq<'_, R> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R: Deserialize<'de>> Visitor<'de> for AppendSeq<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of results")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(value) = seq.next_element()? {
            self.0.push(value);
        }
        Ok(())
    }
}
