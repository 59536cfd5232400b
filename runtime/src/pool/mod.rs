//! [`Pool`]: Python's `multiprocessing.Pool`, scheduled by the parent so
//! that no failure of a worker can hang it.

mod results;
mod scheduler;
mod worker;

pub use results::{AsyncResult, IMap};

use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use results::{Collector, Finish, ResultCell};
use scheduler::{Config, Scheduler, Shared, Task};

use crate::codec::{self, Encoded};
use crate::error::{Error, Result};
use crate::registry::{self, Remote};
use crate::start::StartMethod;

/// A pool of worker processes that run `#[remote]` fns: Python's
/// `multiprocessing.Pool`.
///
/// ```
/// #[multiproc::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let pool = multiproc::Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=4)?, vec![1, 4, 9, 16]);
/// let later = pool.apply_async(square, (5,))?;
/// assert_eq!(later.get()?, 25);
/// # Ok(())
/// # }
/// ```
///
/// The parent schedules: each worker is handed a chunk of calls at a time
/// and the pool always knows which chunk each worker runs. So:
///
/// - a call that panics is `Err(Error::Remote(..))` for that item;
/// - a worker that dies (a segfault, an abort, `exit`, SIGKILL, running out
///   of memory) makes the chunk it was running `Err(Error::ProcessDied{..})`,
///   and a new worker takes its place; the other chunks run as if nothing
///   happened;
/// - with [`task_timeout`](PoolBuilder::task_timeout), a chunk that runs
///   longer is killed with its worker and is `Err(Error::Timeout)`;
/// - a result that does not decode is `Err(Error::Codec(..))` for its
///   chunk.
///
/// None of these hangs the pool or the caller. Dropping the pool
/// terminates it, as leaving Python's `with Pool()` block does; results not
/// in by then are `Err(Error::Closed)`.
///
/// Inputs are consumed when a call is made: `map`, `imap` and the `_async`
/// forms encode every argument up front (a value that cannot be encoded is
/// an error then, before anything runs).
pub struct Pool {
    shared: Arc<Shared>,
    scheduler: Mutex<Option<JoinHandle<()>>>,
    callbacks: Mutex<Option<(mpsc::Sender<Callback>, JoinHandle<()>)>>,
    processes: usize,
    task_timeout: Option<Duration>,
}

/// The most items a `map` puts in a chunk unless told otherwise. Python's
/// four chunks per worker leave the parent and the workers waiting on one
/// another for long stretches on a large input: `map` of `x*x` over a
/// million integers on 2 workers took 25.6 ms in chunks of 125,000 and
/// 13.8 ms in chunks of 15,000 (no better below 30,000).
const MAX_DEFAULT_CHUNK: usize = 16_384;

/// Encoded chunks are handed to the scheduler once this many bytes of them
/// are ready.
const SUBMIT_BATCH: usize = 64 << 10;

/// Work for the callback thread.
type Callback = Box<dyn FnOnce() + Send>;

impl Pool {
    /// A pool of `processes` workers, started now.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `processes` is 0, or a worker cannot be started
    /// (those started are stopped again).
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for a pool with an initializer, a task limit per worker,
    /// a start method or a task timeout.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// How many workers the pool keeps.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Calls `f` on every item, in the workers, and returns the results in
    /// input order: Python's `Pool.map`. Items go out in chunks of about
    /// `len / (4 * processes)`, at most 16,384 (one with a task timeout);
    /// see [`map_chunked`](Pool::map_chunked) to choose.
    ///
    /// # Errors
    ///
    /// The first failed item's error, in input order, once every item is
    /// done; [`Error::Codec`] if an item cannot be encoded (then nothing
    /// runs); [`Error::Closed`] if the pool is closed.
    pub fn map<F, A>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<Vec<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.map_async(f, items)?.into_result()
    }

    /// [`map`](Pool::map) in chunks of `chunk_size` items.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    pub fn map_chunked<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunk_size: usize,
    ) -> Result<Vec<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.all_async(f, items.into_iter().map(|a| (a,)), Some(chunk_size), None)?.into_result()
    }

    /// Calls `f` with each tuple of arguments: Python's `Pool.starmap`.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    pub fn starmap<F: Remote>(
        &self,
        f: F,
        items: impl IntoIterator<Item = F::Args>,
    ) -> Result<Vec<F::Output>> {
        self.starmap_async(f, items)?.into_result()
    }

    /// [`starmap`](Pool::starmap) in chunks of `chunk_size` items.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    pub fn starmap_chunked<F: Remote>(
        &self,
        f: F,
        items: impl IntoIterator<Item = F::Args>,
        chunk_size: usize,
    ) -> Result<Vec<F::Output>> {
        self.all_async(f, items.into_iter(), Some(chunk_size), None)?.into_result()
    }

    /// Calls `f` on every item and yields the results in input order as
    /// they come: Python's `Pool.imap`, one item per chunk unless
    /// [`imap_chunked`](Pool::imap_chunked) says otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if an item cannot be encoded; [`Error::Closed`] if
    /// the pool is closed. Each item's own error comes out of the
    /// iterator.
    pub fn imap<F, A>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<IMap<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Pool::imap) in chunks of `chunk_size` items.
    ///
    /// # Errors
    ///
    /// As [`imap`](Pool::imap).
    pub fn imap_chunked<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunk_size: usize,
    ) -> Result<IMap<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.iter(f, items.into_iter().map(|a| (a,)), chunk_size, true)
    }

    /// Like [`imap`](Pool::imap), yielding results in the order they
    /// finish: Python's `Pool.imap_unordered`.
    ///
    /// # Errors
    ///
    /// As [`imap`](Pool::imap).
    pub fn imap_unordered<F, A>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<IMap<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.imap_unordered_chunked(f, items, 1)
    }

    /// [`imap_unordered`](Pool::imap_unordered) in chunks of `chunk_size`
    /// items.
    ///
    /// # Errors
    ///
    /// As [`imap`](Pool::imap).
    pub fn imap_unordered_chunked<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunk_size: usize,
    ) -> Result<IMap<F::Output>>
    where
        F: Remote<Args = (A,)>,
    {
        self.iter(f, items.into_iter().map(|a| (a,)), chunk_size, false)
    }

    /// Calls `f(args)` in a worker and waits for it: Python's `Pool.apply`.
    ///
    /// # Errors
    ///
    /// As [`AsyncResult::into_result`], and [`Error::Codec`] or
    /// [`Error::Closed`] as for [`map`](Pool::map).
    pub fn apply<F: Remote>(&self, f: F, args: F::Args) -> Result<F::Output> {
        self.apply_async(f, args)?.into_result()
    }

    /// Calls `f(args)` in a worker; the result is collected later.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if the arguments cannot be encoded;
    /// [`Error::Closed`] if the pool is closed.
    pub fn apply_async<F: Remote>(&self, f: F, args: F::Args) -> Result<AsyncResult<F::Output>> {
        self.one_async(f, args, None)
    }

    /// [`apply_async`](Pool::apply_async) with callbacks, which run in this
    /// process, on the pool's callback thread, before the result is ready:
    /// `callback` with the value, or `error_callback` with the error.
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    pub fn apply_async_with<F: Remote>(
        &self,
        f: F,
        args: F::Args,
        callback: impl FnOnce(&F::Output) + Send + 'static,
        error_callback: impl FnOnce(&Error) + Send + 'static,
    ) -> Result<AsyncResult<F::Output>> {
        self.one_async(f, args, Some(on_result(callback, error_callback)))
    }

    /// [`map`](Pool::map), collected later.
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    pub fn map_async<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Remote<Args = (A,)>,
    {
        self.all_async(f, items.into_iter().map(|a| (a,)), None, None)
    }

    /// [`map_async`](Pool::map_async) with callbacks, as for
    /// [`apply_async_with`](Pool::apply_async_with): `callback` gets every
    /// result, `error_callback` the first error.
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    pub fn map_async_with<F, A>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        callback: impl FnOnce(&Vec<F::Output>) + Send + 'static,
        error_callback: impl FnOnce(&Error) + Send + 'static,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Remote<Args = (A,)>,
    {
        self.all_async(f, items.into_iter().map(|a| (a,)), None, Some(on_result(callback, error_callback)))
    }

    /// [`starmap`](Pool::starmap), collected later.
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    pub fn starmap_async<F: Remote>(
        &self,
        f: F,
        items: impl IntoIterator<Item = F::Args>,
    ) -> Result<AsyncResult<Vec<F::Output>>> {
        self.all_async(f, items.into_iter(), None, None)
    }

    /// [`starmap_async`](Pool::starmap_async) with callbacks, as for
    /// [`map_async_with`](Pool::map_async_with).
    ///
    /// # Errors
    ///
    /// As [`apply_async`](Pool::apply_async).
    pub fn starmap_async_with<F: Remote>(
        &self,
        f: F,
        items: impl IntoIterator<Item = F::Args>,
        callback: impl FnOnce(&Vec<F::Output>) + Send + 'static,
        error_callback: impl FnOnce(&Error) + Send + 'static,
    ) -> Result<AsyncResult<Vec<F::Output>>> {
        self.all_async(f, items.into_iter(), None, Some(on_result(callback, error_callback)))
    }

    /// Takes no more work; the workers exit once what was submitted is
    /// done. [`join`](Pool::join) waits for that.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Stops the workers now. Results not in yet are `Err(Error::Closed)`.
    ///
    /// # Errors
    ///
    /// None so far; `Result` leaves room for a stop that can fail.
    pub fn terminate(&self) -> Result<()> {
        self.shared.terminate();
        self.wait_for_scheduler();
        Ok(())
    }

    /// Waits for the workers to exit, after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate), and for every callback to have run.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) if the pool is still running: as in
    /// Python, `join` needs `close` or `terminate` first.
    pub fn join(&self) -> Result<()> {
        if !self.shared.is_closed() {
            return Err(Error::invalid_input(
                "the pool is still running: call close() or terminate() before join()",
            ));
        }
        self.wait_for_scheduler();
        Ok(())
    }

    fn wait_for_scheduler(&self) {
        let scheduler = self.scheduler.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = scheduler {
            let _ = thread.join();
        }
        let callbacks = self.callbacks.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((sender, thread)) = callbacks {
            drop(sender);
            let _ = thread.join();
        }
    }

    /// The chunk size of a `map` over `len` items: Python's, `len / (4 *
    /// processes)` rounded up, but at most [`MAX_DEFAULT_CHUNK`]; or 1 with
    /// a task timeout, so that each call has its own deadline.
    fn default_chunk_size(&self, len: usize) -> usize {
        if self.task_timeout.is_some() {
            return 1;
        }
        len.div_ceil(4 * self.processes).clamp(1, MAX_DEFAULT_CHUNK)
    }

    /// Encodes `args` in chunks and queues them; the collector takes the
    /// results.
    fn submit<F: Remote>(
        &self,
        args: impl Iterator<Item = F::Args>,
        len: usize,
        chunk_size: usize,
        finish: Option<Finish<F::Output>>,
    ) -> Result<Arc<Collector<F::Output>>> {
        if chunk_size == 0 {
            return Err(Error::invalid_input("the chunk size must be at least 1"));
        }
        registry::check_unique()?;
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        let collector = Arc::new(Collector::new(F::NAME, len, chunk_size));
        if let Some(finish) = finish {
            collector.set_finish(finish);
        }
        // Chunks go out as they are encoded, so that the workers start on
        // the first while the rest are encoded; a few at a time, so that
        // the scheduler is not woken for each.
        let mut args = args.fuse();
        let mut chunk: Vec<F::Args> = Vec::with_capacity(chunk_size.min(len));
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for (index, range) in collector.chunks().enumerate() {
            chunk.clear();
            chunk.extend(args.by_ref().take(range.len()));
            if chunk.len() < range.len() {
                return Err(lying_iterator(len));
            }
            let encoded = codec::encode(&chunk[..])?;
            batch_bytes += encoded.bytes.len();
            batch.push(Task { job: collector.clone(), index, target: F::NAME, chunk: encoded });
            if batch_bytes >= SUBMIT_BATCH {
                self.shared.submit(std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        if args.next().is_some() {
            return Err(lying_iterator(len));
        }
        if !batch.is_empty() {
            self.shared.submit(batch)?;
        }
        Ok(collector)
    }

    fn iter<F: Remote>(
        &self,
        _f: F,
        args: impl Iterator<Item = F::Args>,
        chunk_size: usize,
        ordered: bool,
    ) -> Result<IMap<F::Output>> {
        let (len, args) = with_len(args);
        let collector = self.submit::<F>(args, len, chunk_size, None)?;
        Ok(IMap::new(collector, len, ordered))
    }

    fn all_async<F: Remote>(
        &self,
        _f: F,
        args: impl Iterator<Item = F::Args>,
        chunk_size: Option<usize>,
        callbacks: Option<OnResult<Vec<F::Output>>>,
    ) -> Result<AsyncResult<Vec<F::Output>>> {
        let (len, args) = with_len(args);
        let cell = ResultCell::new();
        let deliver = self.deliverer(cell.clone(), callbacks);
        let chunk_size = chunk_size.unwrap_or_else(|| self.default_chunk_size(len));
        let finish = Box::new(move |results: Result<Vec<F::Output>>| deliver(results));
        self.submit::<F>(args, len, chunk_size, Some(finish))?;
        Ok(AsyncResult::new(cell))
    }

    fn one_async<F: Remote>(
        &self,
        _f: F,
        args: F::Args,
        callbacks: Option<OnResult<F::Output>>,
    ) -> Result<AsyncResult<F::Output>> {
        let cell = ResultCell::new();
        let deliver = self.deliverer(cell.clone(), callbacks);
        let finish = Box::new(move |results: Result<Vec<F::Output>>| {
            deliver(results.and_then(|mut values| values.pop().ok_or(Error::Closed)));
        });
        self.submit::<F>(std::iter::once(args), 1, 1, Some(finish))?;
        Ok(AsyncResult::new(cell))
    }

    /// What completes `cell`: directly, or through the callback thread
    /// when there are callbacks, so that they run before the result is
    /// ready.
    fn deliverer<R: Send + 'static>(
        &self,
        cell: Arc<ResultCell<R>>,
        callbacks: Option<OnResult<R>>,
    ) -> impl FnOnce(Result<R>) + Send + 'static {
        let sender = callbacks.as_ref().map(|_| self.callback_sender());
        move |result: Result<R>| match (callbacks, sender) {
            (Some(callbacks), Some(sender)) => {
                let job: Callback = Box::new(move || {
                    let ran = registry::catch_panic(|| callbacks(&result));
                    if let Err(panicked) = ran {
                        log::error!("a pool callback panicked: {}", panicked.message);
                    }
                    cell.complete(result);
                });
                if let Err(mpsc::SendError(job)) = sender.send(job) {
                    job();
                }
            }
            _ => cell.complete(result),
        }
    }

    /// The sender of the callback thread, started on first use.
    fn callback_sender(&self) -> mpsc::Sender<Callback> {
        let mut callbacks = self.callbacks.lock().unwrap_or_else(PoisonError::into_inner);
        let (sender, _) = callbacks.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::channel::<Callback>();
            let thread = std::thread::Builder::new()
                .name("multiproc-pool-callbacks".to_owned())
                .spawn(move || {
                    for job in receiver {
                        job();
                    }
                })
                .expect("a thread for the pool's callbacks");
            (sender, thread)
        });
        sender.clone()
    }
}

/// An iterator whose length is known: as it is when its size hint is
/// exact (a range, a `Vec`, a `map` of one), else collected first.
enum Sized<I: Iterator> {
    Exact(I),
    Collected(std::vec::IntoIter<I::Item>),
}

impl<I: Iterator> Iterator for Sized<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        match self {
            Sized::Exact(items) => items.next(),
            Sized::Collected(items) => items.next(),
        }
    }
}

fn with_len<I: Iterator>(items: I) -> (usize, Sized<I>) {
    match items.size_hint() {
        (low, Some(high)) if low == high => (low, Sized::Exact(items)),
        _ => {
            let collected: Vec<I::Item> = items.collect();
            (collected.len(), Sized::Collected(collected.into_iter()))
        }
    }
}

fn lying_iterator(len: usize) -> Error {
    Error::invalid_input(format!("the items' iterator did not yield the {len} items its size hint promised"))
}

/// Callbacks on a result: the one for its value or the one for its error.
type OnResult<R> = Box<dyn FnOnce(&Result<R>) + Send>;

fn on_result<R>(
    callback: impl FnOnce(&R) + Send + 'static,
    error_callback: impl FnOnce(&Error) + Send + 'static,
) -> OnResult<R> {
    Box::new(move |result: &Result<R>| match result {
        Ok(value) => callback(value),
        Err(e) => error_callback(e),
    })
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.terminate();
        self.wait_for_scheduler();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

/// Configures a [`Pool`]. Made by [`Pool::builder`].
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<(&'static str, Result<Encoded>)>,
    max_tasks: Option<u64>,
    start_method: Option<StartMethod>,
    task_timeout: Option<Duration>,
}

impl PoolBuilder {
    /// How many workers (the number of CPUs by default).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = Some(processes);
        self
    }

    /// Runs `f(args)` in each worker when it starts, before any task. If
    /// it panics, every task fails with that panic as `Error::Remote`.
    pub fn initializer<F: Remote>(mut self, f: F, args: F::Args) -> Self {
        let _ = f;
        self.initializer = Some((F::NAME, codec::encode(&args)));
        self
    }

    /// Replaces each worker after it has run `tasks` tasks (chunks), to
    /// give back memory that the work leaks: Python's `maxtasksperchild`.
    pub fn maxtasksperchild(mut self, tasks: u64) -> Self {
        self.max_tasks = Some(tasks);
        self
    }

    /// Starts the workers with `method` instead of the default.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Kills a worker whose task runs longer than `timeout`; that task's
    /// result is `Err(Error::Timeout)` and a new worker takes the place.
    /// With a timeout, `map` sends one call per task by default, so that
    /// each call has its own deadline; with an explicit chunk size, the
    /// deadline is the chunk's.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Starts the workers and the pool's scheduler thread.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for 0 processes or 0 tasks per
    /// worker; [`Error::Codec`] if the initializer's arguments cannot be
    /// encoded; [`Error::Io`] if a worker cannot be started (those started
    /// are stopped again).
    pub fn build(self) -> Result<Pool> {
        let processes = self.processes.unwrap_or_else(crate::process::cpu_count);
        if processes == 0 {
            return Err(Error::invalid_input("the number of processes must be at least 1"));
        }
        if self.max_tasks == Some(0) {
            return Err(Error::invalid_input("maxtasksperchild must be at least 1"));
        }
        let initializer = match self.initializer {
            Some((name, args)) => Some((name, args?)),
            None => None,
        };
        registry::check_unique()?;
        let config = Config {
            processes,
            start_method: self.start_method,
            initializer,
            max_tasks: self.max_tasks,
            task_timeout: self.task_timeout,
        };
        let (scheduler, shared) = Scheduler::new(config)?;
        let thread =
            std::thread::Builder::new().name("multiproc-pool".to_owned()).spawn(move || scheduler.run())?;
        Ok(Pool {
            shared,
            scheduler: Mutex::new(Some(thread)),
            callbacks: Mutex::new(None),
            processes,
            task_timeout: self.task_timeout,
        })
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.initializer.as_ref().map(|(name, _)| name))
            .field("maxtasksperchild", &self.max_tasks)
            .field("start_method", &self.start_method)
            .field("task_timeout", &self.task_timeout)
            .finish()
    }
}
