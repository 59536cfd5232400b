//! Processes: [`spawn`], [`Process`], [`ProcessBuilder`], and what a process
//! knows of itself and its family.

mod context;
mod info;

pub use context::Context;
pub(crate) use info::may_spin;
pub use info::{ProcessInfo, active_children, cpu_count, current_process, parent_process};

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::codec::{self, Encoded, FrameReader, ReadOutcome};
use crate::error::{Error, RemoteError, Result};
use crate::registry::{self, Remote};
use crate::start::children::ChildEntry;
use crate::start::spec::{ChildSpec, Outcome};
use crate::start::{self, StartMethod, identity};
use crate::sys;

/// Runs `f(args)` in a new process, started with the default start method
/// (see [`set_start_method`](crate::set_start_method)). Short for
/// `Process::builder().spawn(f, args)`.
///
/// # Errors
///
/// [`Error::Codec`] if the arguments cannot be encoded (no process is
/// started then), [`Error::DuplicateFunction`] if two `#[remote]` fns share
/// a name, [`Error::Io`] if the process cannot be started.
///
/// ```
/// #[multiproc::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let p = multiproc::spawn(square, (7,))?;
/// assert_eq!(p.join()?, 49);
/// # Ok(())
/// # }
/// ```
pub fn spawn<F: Remote>(f: F, args: F::Args) -> Result<Process<F::Output>> {
    Process::builder().spawn(f, args)
}

/// A child process running a remote fn that returns `T`.
///
/// Dropping a `Process` does not stop the child: it runs on, is reaped when
/// it ends (by [`active_children`] or the next start of a child), and at
/// the end of `main` a non-daemonic child is joined and a daemonic one
/// terminated, as in Python. Whatever happens, a child never outlives its
/// parent: it is killed when the parent dies, even by SIGKILL.
pub struct Process<T> {
    entry: Arc<ChildEntry>,
    function: &'static str,
    channel: Mutex<ResultChannel>,
    _output: PhantomData<fn() -> T>,
}

/// The parent's end of the child's channel, where the outcome arrives.
#[derive(Debug)]
struct ResultChannel {
    fd: OwnedFd,
    reader: FrameReader,
    outcome: Option<Encoded>,
    /// Nothing more can arrive: an outcome, end of file, or a broken frame.
    done: bool,
}

impl ResultChannel {
    /// Reads what has arrived, without waiting.
    fn drain(&mut self) {
        while !self.done {
            match self.reader.read(self.fd.as_fd(), true) {
                Ok(ReadOutcome::Frame(frame)) => {
                    self.outcome = Some(frame);
                    self.done = true;
                }
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::Eof) | Err(_) => self.done = true,
            }
        }
    }
}

impl Process<()> {
    /// A builder for a process with a name, a daemon flag or a start method.
    ///
    /// ```
    /// #[multiproc::remote]
    /// fn hello(who: String) -> String {
    ///     format!("hello {who} from {}", multiproc::current_process().name())
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let p = multiproc::Process::builder().name("worker-1").spawn(hello, ("you".to_string(),))?;
    /// assert_eq!(p.name(), "worker-1");
    /// assert_eq!(p.join()?, "hello you from worker-1");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

impl<T> Process<T> {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.entry.pid()
    }

    /// The child's name: the one given to the builder, or `Process-N`.
    pub fn name(&self) -> &str {
        self.entry.name()
    }

    /// Whether the child is a daemon (terminated rather than joined when
    /// the parent's `main` ends).
    pub fn is_daemon(&self) -> bool {
        self.entry.is_daemon()
    }

    /// An fd that becomes readable once the child has ended (Python's
    /// `sentinel`), to wait on beside others; see
    /// [`connection::wait`](crate::connection::wait).
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.entry.sentinel()
    }

    /// True until the child has ended.
    pub fn is_alive(&self) -> bool {
        matches!(self.entry.exitcode(), Ok(None))
    }

    /// `None` while the child runs; then its exit code: 0 after a normal
    /// return, 1 after a panic, the status it passed to `exit`, or `-N` if
    /// signal `N` killed it.
    pub fn exitcode(&self) -> Option<i32> {
        self.entry.exitcode().ok().flatten()
    }

    /// Asks the child to stop (SIGTERM). Doing so to a child that has ended
    /// is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal cannot be sent.
    pub fn terminate(&mut self) -> Result<()> {
        Ok(self.entry.signal(sys::process::SIGTERM)?)
    }

    /// Kills the child (SIGKILL). Doing so to a child that has ended is not
    /// an error.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal cannot be sent.
    pub fn kill(&mut self) -> Result<()> {
        Ok(self.entry.signal(sys::process::SIGKILL)?)
    }

    /// Waits up to `timeout` for the child to end. `Ok(true)` once it has.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[multiproc::remote]
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms));
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// let mut p = multiproc::spawn(nap, (10_000,))?;
    /// assert!(!p.wait_timeout(Duration::from_millis(50))?);
    /// p.terminate()?;
    /// assert!(p.wait_timeout(Duration::from_secs(10))?);
    /// assert_eq!(p.exitcode(), Some(-15));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if waiting fails.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        Ok(self.wait(Some(Instant::now() + timeout))?.is_some())
    }

    /// Waits for the child to end, reading its outcome as it arrives (so a
    /// child writing a large result is never blocked by a parent that only
    /// waits).
    fn wait(&self, deadline: Option<Instant>) -> Result<Option<i32>> {
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            channel.drain();
            if let Some(code) = self.entry.exitcode()? {
                channel.drain();
                return Ok(Some(code));
            }
            let ready = if channel.done {
                sys::poll::wait_readable([self.entry.sentinel()], deadline)?[0]
            } else {
                sys::poll::wait_readable([channel.fd.as_fd(), self.entry.sentinel()], deadline)?
                    .contains(&true)
            };
            if !ready {
                return Ok(self.entry.exitcode()?);
            }
        }
    }

    fn into_outcome(self) -> Result<(Option<Encoded>, i32)> {
        let code = self.wait(None)?.expect("waiting without a deadline ends only when the child does");
        self.entry.forget();
        let mut channel = self.channel.into_inner().unwrap_or_else(PoisonError::into_inner);
        Ok((channel.outcome.take(), code))
    }
}

impl<T: serde::de::DeserializeOwned> Process<T> {
    /// Waits for the child to end and returns what the remote fn returned.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] if the fn panicked (with the message, the child's
    /// pid and where it panicked); [`Error::ProcessDied`] if the child ended
    /// any other way (killed, aborted, crashed, or called `exit`);
    /// [`Error::UnknownFunction`] if the child has no fn of that name;
    /// [`Error::Codec`] if the result could not be encoded or decoded.
    ///
    /// ```
    /// #[multiproc::remote]
    /// fn boom() -> u8 {
    ///     panic!("no luck")
    /// }
    ///
    /// # fn main() -> multiproc::Result<()> {
    /// match multiproc::spawn(boom, ())?.join() {
    ///     Err(multiproc::Error::Remote(e)) => assert_eq!(e.message(), "no luck"),
    ///     other => panic!("expected a remote panic, got {other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(self) -> Result<T> {
        let pid = self.pid();
        let function = self.function;
        let (outcome, exitcode) = self.into_outcome()?;
        let Some(Encoded { bytes, fds }) = outcome else {
            return Err(Error::ProcessDied { pid, exitcode });
        };
        let outcome: Outcome = codec::decode(Encoded::from_bytes(bytes))
            .map_err(|e| Error::Codec(format!("the outcome sent by process {pid} did not decode: {e}")))?;
        match outcome {
            Outcome::Returned(bytes) => codec::decode(Encoded { bytes, fds }),
            Outcome::Panicked { message, location } => {
                Err(Error::Remote(RemoteError { function: function.to_owned(), message, pid, location }))
            }
            Outcome::UnknownFunction(name) => Err(Error::UnknownFunction(name)),
            Outcome::Codec(msg) => Err(Error::Codec(msg)),
        }
    }
}

impl<T> fmt::Debug for Process<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Process");
        d.field("name", &self.name()).field("pid", &self.pid()).field("function", &self.function);
        match self.exitcode() {
            None => d.field("state", &"started"),
            Some(code) => d.field("state", &"stopped").field("exitcode", &code),
        };
        d.finish()
    }
}

/// Configures a process before it starts. Made by [`Process::builder`].
///
/// Defaults: the name `Process-N` (N counts the children this process has
/// started, so a child of `Process-4` is `Process-4:1`), the daemon flag of
/// the current process, and the default start method.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: Option<bool>,
    start_method: Option<StartMethod>,
}

impl ProcessBuilder {
    /// Names the process; the child sees it as `current_process().name()`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the process a daemon: when the parent's `main` ends, a daemon
    /// is terminated instead of joined.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Starts the process with `method` instead of the default.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts the process, running `f(args)`.
    ///
    /// # Errors
    ///
    /// As [`spawn`].
    pub fn spawn<F: Remote>(self, f: F, args: F::Args) -> Result<Process<F::Output>> {
        let _ = f;
        registry::check_unique()?;
        self.spawn_target(F::NAME, codec::encode(&args)?)
    }

    /// Starts the process, running the fn registered as `target` with
    /// arguments encoded already.
    pub(crate) fn spawn_target<T>(self, target: &'static str, args: Encoded) -> Result<Process<T>> {
        let (default_name, path) = identity::next_child();
        let name = self.name.unwrap_or(default_name);
        let daemon = self.daemon.unwrap_or_else(identity::is_daemon);
        let method = self.start_method.unwrap_or_else(start::get_start_method);
        let spec = ChildSpec {
            token: identity::token()?,
            target: target.to_owned(),
            args: args.bytes,
            name: name.clone(),
            path,
            parent_name: identity::name(),
            parent_pid: std::process::id(),
            daemon,
            start_method: method,
            log_level: log::max_level() as u8,
            log_to_stderr: start::logging::in_use(),
        };
        let launched = start::launch(method, &spec, args.fds)?;
        let entry = ChildEntry::register(launched.watch, name, daemon)?;
        Ok(Process {
            entry,
            function: target,
            channel: Mutex::new(ResultChannel {
                fd: launched.channel,
                reader: FrameReader::new(usize::MAX),
                outcome: None,
                done: false,
            }),
            _output: PhantomData,
        })
    }
}
