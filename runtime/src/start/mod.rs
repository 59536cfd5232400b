//! The start methods and the child bootstrap.
//!
//! Whatever the method, a child receives one [`ChildSpec`](spec::ChildSpec)
//! over a socket, runs it, sends back one [`Outcome`](spec::Outcome) and
//! exits. The methods differ only in how the process comes to exist:
//!
//! - [`StartMethod::ForkServer`] (the default): the first child re-executes
//!   the program once as a fork server, a single-threaded copy held in a
//!   constructor before `main`; every child is forked from it.
//! - [`StartMethod::Spawn`]: every child is a fresh execution of the program,
//!   caught by the same constructor.
//! - [`StartMethod::Fork`]: the child is a fork of this process, with a copy
//!   of its memory.

pub(crate) mod bootstrap;
pub(crate) mod children;
mod forkserver;
pub(crate) mod identity;
mod launcher;
pub(crate) mod logging;
pub(crate) mod spec;
pub(crate) mod tracker;
pub(crate) mod watch;

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::codec::{self, Encoded};
use crate::error::Result;
use crate::sys;
use children::ChildWatch;
use spec::ChildSpec;

/// How a child process comes to exist. See [`set_start_method`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StartMethod {
    /// Fork each child from a fork server: a fresh, single-threaded copy of
    /// the program started once, on first use. Cheap (one `fork` of a small
    /// process) and safe in a multithreaded parent. The default.
    #[default]
    ForkServer,
    /// Start each child as a fresh execution of the program. The most
    /// isolated, and the slowest.
    Spawn,
    /// Fork the parent itself: the child sees a copy of the parent's memory.
    /// Safe only when the parent has no other threads; multiproc logs a
    /// warning (once) when it has.
    Fork,
}

impl StartMethod {
    /// Every start method, the default first.
    pub const ALL: [StartMethod; 3] = [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork];

    /// Python's name for the method: `"forkserver"`, `"spawn"` or `"fork"`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::ForkServer => "forkserver",
            StartMethod::Spawn => "spawn",
            StartMethod::Fork => "fork",
        }
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static DEFAULT_METHOD: AtomicU8 = AtomicU8::new(0);

/// Sets the start method used by [`spawn`](crate::spawn),
/// [`Process::builder`](crate::Process::builder) and the other crate-level
/// constructors. A library should not call this; it should use a
/// [`Context`](crate::Context) instead, which leaves the global default
/// alone.
///
/// ```
/// use multiproc::StartMethod;
///
/// multiproc::set_start_method(StartMethod::Spawn);
/// assert_eq!(multiproc::get_start_method(), StartMethod::Spawn);
/// multiproc::set_start_method(StartMethod::ForkServer);
/// ```
pub fn set_start_method(method: StartMethod) {
    let index = StartMethod::ALL.iter().position(|m| *m == method).expect("listed") as u8;
    DEFAULT_METHOD.store(index, Ordering::Relaxed);
}

/// The start method used by the crate-level constructors:
/// [`StartMethod::ForkServer`] unless [`set_start_method`] changed it. In a
/// child, the method that started it.
///
/// ```
/// assert_eq!(multiproc::get_start_method(), multiproc::StartMethod::ForkServer);
/// ```
pub fn get_start_method() -> StartMethod {
    StartMethod::ALL[DEFAULT_METHOD.load(Ordering::Relaxed) as usize]
}

/// A child that has been started and sent its spec.
#[derive(Debug)]
pub(crate) struct Launched {
    /// How to learn when it ends.
    pub(crate) watch: ChildWatch,
    /// The parent's end of the child's channel: the outcome arrives here.
    pub(crate) channel: OwnedFd,
}

/// Specs up to this size are written before the child exists, so it finds
/// its work waiting; a fresh socket buffers this much without a reader.
const PREWRITE_LIMIT: usize = 64 << 10;

/// Starts a child with `method` and hands it `spec`, whose encoded
/// arguments carry `fds`.
pub(crate) fn launch(method: StartMethod, spec: &ChildSpec, fds: Vec<OwnedFd>) -> Result<Launched> {
    let frame = codec::encode(spec)?;
    let (parent_end, child_end) = sys::socket::socketpair()?;
    let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    let prewritten = frame.bytes.len() <= PREWRITE_LIMIT;
    if prewritten {
        codec::write_frame(parent_end.as_fd(), &frame.bytes, &fds)?;
    }
    if method == StartMethod::Fork {
        // What this process printed but has not flushed would otherwise be
        // copied into the child and printed twice. The lock is reentrant, so
        // a caller holding it does not block here.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // The child must not take the panic hook's lock, which another
        // thread here may hold at the moment of the fork (a thread that is
        // panicking does): the hook that records where tasks panic is put
        // in place here, once, and the child inherits it.
        crate::registry::record_panic_locations();
    }
    let watch = match method {
        StartMethod::ForkServer => forkserver::fork_child(child_end)?,
        StartMethod::Spawn => launcher::spawn_child(child_end)?,
        StartMethod::Fork => launcher::fork_child(child_end)?,
    };
    if !prewritten {
        write_spec_late(&parent_end, &frame, &fds, &watch)?;
    }
    Ok(Launched { watch, channel: parent_end })
}

/// Writes a large spec once the child exists. A child that died before
/// reading it is not an error here: joining it reports how it died.
fn write_spec_late(
    parent_end: &OwnedFd,
    frame: &Encoded,
    fds: &[std::os::fd::BorrowedFd<'_>],
    watch: &ChildWatch,
) -> Result<()> {
    match codec::write_frame(parent_end.as_fd(), &frame.bytes, fds) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            let _ = watch.signal(sys::process::SIGKILL);
            Err(e.into())
        }
        Ok(()) => Ok(()),
    }
}

/// The reset of state kept by a layer above this one that a `Fork` child
/// must not share with its parent (a manager client's connections), run
/// in the child right after the fork, with the others below.
pub(crate) struct AfterFork(pub(crate) fn(&sys::process::ForkedChild));

inventory::collect!(AfterFork);

/// Resets the runtime's global state in a child forked from this process
/// (the `Fork` method): the child has no children, no fork server, no
/// launcher thread, no copies of the parent's handles, and fresh copies of
/// locks other threads may have held.
fn reset_after_fork(proof: &sys::process::ForkedChild) {
    sys::fd::disarm_handles_in_child(proof);
    children::reset_after_fork(proof);
    forkserver::reset_after_fork(proof);
    launcher::reset_after_fork(proof);
    identity::reset_after_fork(proof);
    tracker::reset_after_fork(proof);
    watch::reset_after_fork(proof);
    for reset in inventory::iter::<AfterFork> {
        (reset.0)(proof);
    }
}
