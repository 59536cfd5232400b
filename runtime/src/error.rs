//! The one error type of the crate.

use std::fmt;
use std::io;

/// `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in multiproc.
///
/// Each variant names a condition the caller can act on; [`Display`]
/// says what happened and, where there is one, what to do.
///
/// [`Display`]: fmt::Display
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// An operating-system call failed.
    Io(io::Error),
    /// A value could not be encoded or decoded.
    Codec(String),
    /// The remote fn panicked in the child.
    Remote(RemoteError),
    /// The process ended without returning a result. `exitcode` follows
    /// Python: the exit status, or `-N` if signal `N` killed it.
    ProcessDied {
        /// The pid of the process that died.
        pid: u32,
        /// Its exit code; `-N` means it was killed by signal `N`.
        exitcode: i32,
    },
    /// A `*_timeout` call ran out of time.
    Timeout,
    /// `try_get` or `get_timeout` found an empty queue.
    Empty,
    /// `try_put` or `put_timeout` found a full queue.
    Full,
    /// The pool, queue, connection or manager is closed.
    Closed,
    /// A barrier was aborted or broken by a waiter that gave up or died.
    BrokenBarrier,
    /// Authentication failed (wrong or missing authkey).
    Auth(String),
    /// No `#[remote]` fn is registered under this name in the process that
    /// was asked to run it.
    UnknownFunction(String),
    /// `recv_bytes_into` was given a buffer smaller than the message, which
    /// is here whole (it has been read, so the stream goes on).
    BufferTooShort(Vec<u8>),
    /// A message is longer than the receiving connection allows; it was
    /// skipped, so the stream goes on.
    MessageTooLong {
        /// The length the sender declared.
        len: u64,
        /// The longest message the connection accepts.
        max: usize,
    },
    /// Two `#[remote]` fns are registered under the same name, so a child
    /// could not tell which one to run.
    DuplicateFunction {
        /// The name both are registered under.
        name: String,
        /// Where the first one is defined (`file:line`).
        first: String,
        /// Where the second one is defined (`file:line`).
        second: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Codec(msg) => write!(f, "encoding error: {msg}"),
            Error::Remote(e) => fmt::Display::fmt(e, f),
            Error::ProcessDied { pid, exitcode } if *exitcode < 0 => write!(
                f,
                "process {pid} was killed by {} before it returned a result",
                crate::sys::process::signal_name(-exitcode)
            ),
            Error::ProcessDied { pid, exitcode } => {
                write!(f, "process {pid} exited with code {exitcode} before it returned a result")
            }
            Error::Timeout => f.write_str("timed out"),
            Error::Empty => f.write_str("the queue is empty"),
            Error::Full => f.write_str("the queue is full"),
            Error::Closed => f.write_str("the other side is closed"),
            Error::BrokenBarrier => f.write_str("the barrier is broken"),
            Error::Auth(msg) => write!(f, "authentication failed: {msg}"),
            Error::UnknownFunction(name) => write!(
                f,
                "no #[remote] fn named `{name}` is registered in the child; \
                 parent and child must run the same binary"
            ),
            Error::BufferTooShort(message) => write!(
                f,
                "the buffer is too small for the {}-byte message (which is in this error)",
                message.len()
            ),
            Error::MessageTooLong { len, max } => {
                write!(
                    f,
                    "a {len}-byte message is over this connection's limit of {max} bytes; it was skipped"
                )
            }
            Error::DuplicateFunction { name, first, second } => write!(
                f,
                "two #[remote] fns are registered as `{name}` ({first} and {second}); \
                 rename one so that a child can tell them apart"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// A call given something it cannot take: [`Error::Io`] of kind
    /// `InvalidInput`, saying what.
    pub(crate) fn invalid_input(what: impl Into<String>) -> Error {
        Error::Io(io::Error::new(io::ErrorKind::InvalidInput, what.into()))
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Error {
        Error::Io(io::Error::new(io::ErrorKind::NotFound, what.into()))
    }

    /// The same error again, for a result that is read more than once
    /// (`io::Error` is not `Clone`: its kind and message are kept).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::Codec(m) => Error::Codec(m.clone()),
            Error::Remote(r) => Error::Remote(r.clone()),
            Error::ProcessDied { pid, exitcode } => Error::ProcessDied { pid: *pid, exitcode: *exitcode },
            Error::Timeout => Error::Timeout,
            Error::Empty => Error::Empty,
            Error::Full => Error::Full,
            Error::Closed => Error::Closed,
            Error::BrokenBarrier => Error::BrokenBarrier,
            Error::Auth(m) => Error::Auth(m.clone()),
            Error::UnknownFunction(n) => Error::UnknownFunction(n.clone()),
            Error::BufferTooShort(b) => Error::BufferTooShort(b.clone()),
            Error::MessageTooLong { len, max } => Error::MessageTooLong { len: *len, max: *max },
            Error::DuplicateFunction { name, first, second } => {
                Error::DuplicateFunction { name: name.clone(), first: first.clone(), second: second.clone() }
            }
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// A panic in a remote fn, as the parent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub(crate) function: String,
    pub(crate) message: String,
    pub(crate) pid: u32,
    pub(crate) location: Option<String>,
}

impl RemoteError {
    /// The registered name of the fn that panicked.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The panic message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The pid of the process the fn panicked in.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the panic happened (`file:line:column`), when known.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote fn `{}` panicked in process {}", self.function, self.pid)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RemoteError {}
