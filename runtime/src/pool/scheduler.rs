//! The pool's scheduler: one thread in the parent that owns the workers.
//!
//! It hands tasks (chunks of calls) to workers on demand, one or two at a
//! time each, and always knows which tasks each worker holds, in order. So
//! a worker that dies, or runs a task past the pool's timeout, fails
//! exactly the task it was running; the tasks queued behind it go to other
//! workers, and a new worker takes its place.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::results::{Failure, Job};
use super::worker::{Reply, TaskHeader, WORKER, WorkerConfig};
use crate::codec::{self, Encoded, ReadOutcome};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::process::{Process, ProcessBuilder};
use crate::start::StartMethod;
use crate::sys;

/// How many tasks a worker may hold: one it runs and the next, waiting,
/// so that it never idles between two; up to 32 when its tasks are short
/// (under [`SHORT_TASK`]) and small (up to [`SMALL_TASK`] bytes), so that
/// many are sent and answered per wake-up (20,000 one-item imap tasks ran
/// at 206-377 k/s with 8, 563-587 k/s with 32, 578-616 k/s with 64). A
/// long task gains nothing from a deeper queue, and a queue held by one
/// worker is work the others cannot take.
const DEPTH_SHORT: usize = 32;
const DEPTH_LONG: usize = 2;
const SHORT_TASK: Duration = Duration::from_micros(500);
const SMALL_TASK: usize = 16 << 10;

/// What a worker holds behind the task it runs stays under this many
/// bytes, which its socket's buffer always takes: sending them never waits
/// for the worker.
const PIPELINE_BYTES: usize = 64 << 10;

/// A task is sent to a worker that waits for it, or fits in its socket's
/// buffer, so a send only takes as long as copying. One that stalls longer
/// than this means the worker has stopped (SIGSTOP, say): it is killed
/// rather than left to hang the pool. The kernel counts the timeout per
/// system call (`SO_SNDTIMEO`), and a call that sent part of a task before
/// it stalled counts as progress: a task larger than the socket's buffer
/// can wait twice this long before its worker is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a worker that was told to stop may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// One chunk of calls of one job.
pub(crate) struct Task {
    pub(crate) job: Arc<dyn Job>,
    /// The chunk's index in its job.
    pub(crate) index: usize,
    pub(crate) target: &'static str,
    /// The encoded `Vec` of argument tuples.
    pub(crate) chunk: Encoded,
}

/// How the pool was configured.
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) start_method: Option<StartMethod>,
    pub(crate) initializer: Option<(&'static str, Encoded)>,
    pub(crate) max_tasks: Option<u64>,
    pub(crate) task_timeout: Option<Duration>,
}

/// What the pool's handles share with the scheduler.
pub(crate) struct Shared {
    inbox: Mutex<Inbox>,
    /// Written to wake the scheduler up.
    wake: UnixStream,
}

#[derive(Default)]
struct Inbox {
    tasks: Vec<Task>,
    closing: bool,
    terminating: bool,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        // A full wake-up socket is as good as a byte more.
        let _ = (&self.wake).write(&[1]);
    }

    /// Queues `tasks`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the pool is closed or terminated.
    pub(crate) fn submit(&self, tasks: Vec<Task>) -> Result<()> {
        let mut inbox = self.inbox();
        if inbox.closing || inbox.terminating {
            return Err(Error::Closed);
        }
        inbox.tasks.extend(tasks);
        drop(inbox);
        self.wake();
        Ok(())
    }

    /// No more tasks: the workers exit once the queued ones are done.
    pub(crate) fn close(&self) {
        self.inbox().closing = true;
        self.wake();
    }

    /// Stops the workers now; what has not run fails with
    /// [`Error::Closed`].
    pub(crate) fn terminate(&self) {
        self.inbox().terminating = true;
        self.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        let inbox = self.inbox();
        inbox.closing || inbox.terminating
    }
}

/// A worker and the tasks it holds.
struct Slot {
    process: Process<()>,
    conn: Connection<()>,
    /// Tasks sent and not answered, in the order the worker runs them.
    held: VecDeque<(u64, Task)>,
    /// Tasks sent in all.
    sent: u64,
    /// When the worker started the first task it holds.
    busy_since: Option<Instant>,
    /// How long its tasks have taken, smoothed; `None` before the first.
    service: Option<Duration>,
    /// A send to it failed: it was killed, and takes no more tasks.
    stuck: bool,
}

impl Slot {
    fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the worker may be sent `task` now.
    fn can_take(&self, task: &Task, max_tasks: Option<u64>) -> bool {
        if self.stuck || max_tasks.is_some_and(|max| self.sent >= max) {
            return false;
        }
        if self.held.is_empty() {
            return true;
        }
        let size = |t: &Task| t.chunk.bytes.len();
        let all_small = size(task) <= SMALL_TASK && self.held.iter().all(|(_, t)| size(t) <= SMALL_TASK);
        let short = self.service.is_some_and(|s| s < SHORT_TASK);
        let depth = if short && all_small { DEPTH_SHORT } else { DEPTH_LONG };
        let waiting: usize = self.held.iter().skip(1).map(|(_, t)| size(t)).sum();
        self.held.len() < depth && waiting + size(task) <= PIPELINE_BYTES
    }

    /// Notes that the task it held first is answered, now.
    fn answered(&mut self) {
        let now = Instant::now();
        if let Some(since) = self.busy_since {
            let took = now - since;
            self.service = Some(self.service.map_or(took, |s| (s * 3 + took) / 4));
        }
        self.busy_since = if self.held.is_empty() { None } else { Some(now) };
    }
}

/// A worker's answer to a task: its reply frame and where the results
/// begin in it, or why there are none.
type Answer = std::result::Result<(Encoded, usize), Failure>;

/// The scheduler thread's state.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    wake_rx: UnixStream,
    config: Config,
    workers: Vec<Slot>,
    queue: VecDeque<Task>,
    next_id: u64,
    /// Workers started so far, for their names.
    started: u64,
    /// Why no task can run any more (the initializer failed, or no worker
    /// could be started).
    broken: Option<Failure>,
    /// Answers read and not handed to their jobs yet: they are handed over
    /// after the workers have been given more work.
    answers: Vec<(Task, Answer, u32)>,
}

impl Scheduler {
    /// Starts the pool's first workers; `Err` (with every worker started so
    /// far stopped) if one cannot be started.
    pub(crate) fn new(config: Config) -> Result<(Scheduler, Arc<Shared>)> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared { inbox: Mutex::new(Inbox::default()), wake });
        let mut scheduler = Scheduler {
            shared: shared.clone(),
            wake_rx,
            config,
            workers: Vec::new(),
            queue: VecDeque::new(),
            next_id: 0,
            started: 0,
            broken: None,
            answers: Vec::new(),
        };
        for _ in 0..scheduler.config.processes {
            // On failure, dropping the scheduler stops those started.
            let slot = scheduler.start_worker()?;
            scheduler.workers.push(slot);
        }
        Ok((scheduler, shared))
    }

    fn start_worker(&mut self) -> Result<Slot> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_write_timeout(Some(SEND_TIMEOUT))?;
        let (ours, theirs) =
            (Connection::from_fd(ours.into(), true), Connection::<()>::from_fd(theirs.into(), true));
        let initializer = match &self.config.initializer {
            Some((name, args)) => Some(((*name).to_owned(), duplicate(args)?)),
            None => None,
        };
        let config = WorkerConfig { initializer, max_tasks: self.config.max_tasks };
        let args = codec::encode(&(theirs, config))?;
        let method = self.config.start_method.unwrap_or_else(crate::start::get_start_method);
        self.started += 1;
        let name = format!("{}PoolWorker-{}", method_label(method), self.started);
        let process = ProcessBuilder::default()
            .name(name)
            .daemon(true)
            .start_method(method)
            .spawn_target::<()>(WORKER, args)?;
        Ok(Slot {
            process,
            conn: ours,
            held: VecDeque::new(),
            sent: 0,
            busy_since: None,
            service: None,
            stuck: false,
        })
    }

    /// Runs until the pool is closed and its work done, or terminated.
    pub(crate) fn run(mut self) {
        loop {
            let (closing, terminating) = self.take_inbox();
            if terminating {
                self.stop_all(true);
                return;
            }
            if let Some(failure) = &self.broken {
                for task in self.queue.drain(..) {
                    fail(&task, failure);
                }
            }
            self.dispatch();
            let idle = self.queue.is_empty() && self.workers.iter().all(|w| w.held.is_empty());
            if closing && idle {
                self.stop_all(false);
                return;
            }
            if let Err(e) = self.wait_and_handle() {
                log::error!("the pool's scheduler failed: {e}; terminating the pool");
                self.stop_all(true);
                return;
            }
            self.take_inbox();
            self.dispatch();
            self.hand_over_answers();
            if !(closing && idle) {
                self.replenish();
            }
        }
    }

    /// Hands the answers read to their jobs, then wakes each job's
    /// consumer once.
    fn hand_over_answers(&mut self) {
        let mut touched: Vec<Arc<dyn Job>> = Vec::new();
        for (task, answer, pid) in self.answers.drain(..) {
            match answer {
                Ok((reply, offset)) => task.job.chunk_done(task.index, reply, offset, pid),
                Err(failure) => task.job.chunk_failed(task.index, &failure),
            }
            if !touched.iter().any(|job| std::ptr::addr_eq(Arc::as_ptr(job), Arc::as_ptr(&task.job))) {
                touched.push(task.job);
            }
        }
        for job in touched {
            job.wake();
        }
    }

    fn take_inbox(&mut self) -> (bool, bool) {
        let mut inbox = self.shared.inbox();
        self.queue.extend(inbox.tasks.drain(..));
        (inbox.closing, inbox.terminating)
    }

    /// Sends queued tasks to the workers that can take them, each to the
    /// worker that holds the fewest; what a worker is given at once goes
    /// out in one system call.
    fn dispatch(&mut self) {
        let max_tasks = self.config.max_tasks;
        // Per worker: where in what it holds the tasks of this pass begin,
        // and their headers (their bodies are the tasks' chunks).
        let mut batches: Vec<(usize, Vec<Vec<u8>>)> =
            self.workers.iter().map(|w| (w.held.len(), Vec::new())).collect();
        while let Some(task) = self.queue.front() {
            let candidates = (0..self.workers.len()).filter(|&w| self.workers[w].can_take(task, max_tasks));
            let Some(w) = candidates.min_by_key(|&w| self.workers[w].held.len()) else {
                break;
            };
            let task = self.queue.pop_front().expect("a task");
            let id = self.next_id;
            self.next_id += 1;
            let header = TaskHeader { id, target: task.target };
            if task.chunk.fds.is_empty() {
                match codec::encode_with_body(&header, &[]) {
                    Ok(header) => batches[w].1.push(header),
                    Err(e) => {
                        fail(&task, &Failure::Codec(e.to_string()));
                        continue;
                    }
                }
            } else {
                // Handles go in a message of their own, after the others.
                let sent = self
                    .send_batch(w, &batches[w])
                    .and_then(|()| send_task(&self.workers[w].conn, header, &task));
                batches[w].1.clear();
                if sent.is_err() {
                    self.queue.push_front(task);
                    self.worker_stuck(w, batches[w].0);
                    continue;
                }
                batches[w].0 = self.workers[w].held.len() + 1;
            }
            let slot = &mut self.workers[w];
            if slot.held.is_empty() {
                slot.busy_since = Some(Instant::now());
            }
            slot.held.push_back((id, task));
            slot.sent += 1;
        }
        for (w, batch) in batches.iter().enumerate() {
            if self.send_batch(w, batch).is_err() {
                self.worker_stuck(w, batch.0);
            }
        }
    }

    /// Sends worker `w` the tasks it holds from `first` on, with these
    /// headers, in one go.
    fn send_batch(&self, w: usize, (first, headers): &(usize, Vec<Vec<u8>>)) -> Result<()> {
        let slot = &self.workers[w];
        let frames: Vec<[&[u8]; 2]> = headers
            .iter()
            .zip(slot.held.range(*first..))
            .map(|(header, (_, task))| [&header[..], &task.chunk.bytes[..]])
            .collect();
        slot.conn.channel.send_batch(&frames)
    }

    /// A send to worker `w` failed: it is gone, or stopped taking work
    /// (and may hold part of a message). It is killed, its exit handled
    /// when its channel reports it, and the tasks it was being sent (those
    /// it holds from `first` on) are queued again.
    fn worker_stuck(&mut self, w: usize, first: usize) {
        let slot = &mut self.workers[w];
        slot.stuck = true;
        let _ = slot.process.kill();
        let unsent = slot.held.split_off(first.min(slot.held.len()));
        slot.sent -= unsent.len() as u64;
        for (_, task) in unsent.into_iter().rev() {
            self.queue.push_front(task);
        }
    }

    /// Waits for a reply, a worker's exit, a wake-up or a task's deadline,
    /// and handles what happened.
    fn wait_and_handle(&mut self) -> Result<()> {
        let deadline = self.config.task_timeout.and_then(|timeout| {
            self.workers.iter().filter_map(|w| w.busy_since).min().map(|since| since + timeout)
        });
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.wake_rx.as_fd()];
        for w in &self.workers {
            fds.push(w.conn.as_fd());
            fds.push(w.process.sentinel());
        }
        let ready = sys::poll::wait_readable_many(&fds, deadline)?;
        drop(fds);
        if ready[0] {
            let mut sink = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        // Backwards, so that removing a worker leaves the indices still to
        // visit as they were.
        for w in (0..self.workers.len()).rev() {
            let (replies, exited) = (ready[1 + 2 * w], ready[2 + 2 * w]);
            let mut gone = exited;
            if replies || exited {
                // A worker that exited may have answered first.
                gone |= self.read_replies(w);
            }
            if gone {
                self.retire(w, None);
            }
        }
        if let Some(timeout) = self.config.task_timeout {
            let now = Instant::now();
            for w in (0..self.workers.len()).rev() {
                if self.workers[w].busy_since.is_some_and(|since| now >= since + timeout) {
                    self.retire(w, Some(Failure::Timeout));
                }
            }
        }
        Ok(())
    }

    /// Reads every reply worker `w` has sent. True if its channel closed or
    /// broke.
    fn read_replies(&mut self, w: usize) -> bool {
        loop {
            let slot = &mut self.workers[w];
            let frame = match slot.conn.channel.reader().read(slot.conn.as_fd(), true) {
                Ok(ReadOutcome::Frame(frame)) => frame,
                Ok(ReadOutcome::WouldBlock) => return false,
                Ok(ReadOutcome::Eof) | Err(_) => return true,
            };
            let Ok((reply, body)) = codec::decode_prefix::<Reply>(&frame.bytes) else {
                return true;
            };
            let held_id = slot.held.front().map(|(id, _)| *id);
            match reply {
                Reply::Done { id } | Reply::Failed { id, .. } if Some(id) != held_id => return true,
                Reply::Done { .. } => {
                    let (_, task) = slot.held.pop_front().expect("a held task");
                    let offset = frame.bytes.len() - body.len();
                    self.answers.push((task, Ok((frame, offset)), slot.process.pid()));
                }
                Reply::Failed { error, .. } => {
                    let (_, task) = slot.held.pop_front().expect("a held task");
                    self.answers.push((task, Err(Failure::Codec(error)), slot.process.pid()));
                }
                Reply::InitFailed(panicked) => {
                    let pid = slot.process.pid();
                    let error = crate::error::RemoteError {
                        function: self.config.initializer.as_ref().map_or("", |(n, _)| n).to_owned(),
                        message: panicked.message,
                        pid,
                        location: panicked.location,
                    };
                    self.broken = Some(Failure::InitFailed(error));
                    return true;
                }
            }
            self.workers[w].answered();
        }
    }

    /// Takes worker `w` out of the pool: stops it if it runs, fails the
    /// task it was running (with `failure`, or as a death), and queues
    /// again the tasks it held behind that one.
    fn retire(&mut self, w: usize, failure: Option<Failure>) {
        let mut slot = self.workers.swap_remove(w);
        if failure.is_some() {
            let _ = slot.process.kill();
        }
        // A worker whose initializer failed took its tasks down with it.
        let failure = failure.or_else(|| self.broken.clone());
        let exitcode = reap(&mut slot.process);
        let mut held = std::mem::take(&mut slot.held);
        if let Some((_, task)) = held.pop_front() {
            let failure = failure.unwrap_or(Failure::Died { pid: slot.pid(), exitcode });
            fail(&task, &failure);
        }
        for (_, task) in held.into_iter().rev() {
            self.queue.push_front(task);
        }
    }

    /// Starts workers until there are as many as configured.
    fn replenish(&mut self) {
        if self.broken.is_some() {
            return;
        }
        while self.workers.len() < self.config.processes {
            match self.start_worker() {
                Ok(slot) => self.workers.push(slot),
                Err(e) => {
                    log::error!("the pool could not start a worker: {e}");
                    if self.workers.is_empty() {
                        self.broken = Some(Failure::NoWorkers(e.to_string()));
                    }
                    return;
                }
            }
        }
    }

    /// Stops every worker: at once when `now`, failing what they held and
    /// what is queued; otherwise by closing their channels, which they
    /// answer by exiting.
    fn stop_all(&mut self, now: bool) {
        self.hand_over_answers();
        let mut workers = std::mem::take(&mut self.workers);
        for slot in &mut workers {
            if now {
                let _ = slot.process.terminate();
            }
        }
        for mut slot in workers {
            drop(slot.conn);
            if !slot.process.wait_timeout(STOP_GRACE).unwrap_or(false) {
                let _ = slot.process.kill();
                let _ = slot.process.wait_timeout(STOP_GRACE);
            }
            for (_, task) in slot.held {
                fail(&task, &Failure::Closed);
            }
        }
        for task in self.queue.drain(..) {
            fail(&task, &Failure::Closed);
        }
        for task in self.shared.inbox().tasks.drain(..) {
            fail(&task, &Failure::Closed);
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop_all(true);
        }
    }
}

/// Fails `task` and wakes its job's consumer.
fn fail(task: &Task, failure: &Failure) {
    task.job.chunk_failed(task.index, failure);
    task.job.wake();
}

/// Sends `task`, which carries handles, to a worker.
fn send_task(conn: &Connection<()>, header: TaskHeader<'_>, task: &Task) -> Result<()> {
    let bytes = codec::encode_with_body(&header, &task.chunk.bytes)?;
    let fds: Vec<BorrowedFd<'_>> = task.chunk.fds.iter().map(AsFd::as_fd).collect();
    conn.channel.send(&bytes, &fds)
}

/// Waits for a worker that is ending and returns its exit code, killing it
/// if it lingers.
fn reap(process: &mut Process<()>) -> i32 {
    if !process.wait_timeout(STOP_GRACE).unwrap_or(false) {
        let _ = process.kill();
        let _ = process.wait_timeout(STOP_GRACE);
    }
    process.exitcode().unwrap_or(-9)
}

/// Another copy of encoded arguments: the same bytes, duplicated fds.
fn duplicate(args: &Encoded) -> Result<Encoded> {
    let fds = args.fds.iter().map(|fd| fd.try_clone()).collect::<std::io::Result<Vec<_>>>()?;
    Ok(Encoded { bytes: args.bytes.clone(), fds })
}

/// The start method's part of a worker's name, as Python names them
/// (`ForkPoolWorker-1`, `SpawnPoolWorker-1`, `ForkServerPoolWorker-1`).
fn method_label(method: StartMethod) -> &'static str {
    match method {
        StartMethod::Fork => "Fork",
        StartMethod::Spawn => "Spawn",
        StartMethod::ForkServer => "ForkServer",
    }
}
