//! The children this process started: how to learn that each one ended,
//! and what happens to them when this process exits.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::codec::{self, FrameReader, ReadOutcome};
use crate::sys;
use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::ForkedChild;

use super::spec::ServerReport;

/// How the parent learns that a child ended, and signals it meanwhile.
#[derive(Debug)]
pub(crate) enum ChildWatch {
    /// A child of this process (spawn, fork): reaped here with `waitpid`.
    Direct { pid: u32, pidfd: OwnedFd },
    /// A child of the fork server, which reaps it and reports the exit code
    /// on `status`.
    Served { pid: u32, pidfd: OwnedFd, status: OwnedFd, reader: FrameReader },
}

impl ChildWatch {
    pub(crate) fn pid(&self) -> u32 {
        match self {
            ChildWatch::Direct { pid, .. } | ChildWatch::Served { pid, .. } => *pid,
        }
    }

    /// An fd that becomes readable when there is news of the child's end.
    fn sentinel(&self) -> BorrowedFd<'_> {
        match self {
            ChildWatch::Direct { pidfd, .. } => pidfd.as_fd(),
            ChildWatch::Served { status, .. } => status.as_fd(),
        }
    }

    /// The exit code, if the child has ended; never blocks for long.
    fn try_exitcode(&mut self) -> io::Result<Option<i32>> {
        match self {
            ChildWatch::Direct { pid, .. } => sys::process::try_reap(*pid),
            ChildWatch::Served { status, reader, pidfd, .. } => loop {
                match reader.read(status.as_fd(), true)? {
                    ReadOutcome::WouldBlock => return Ok(None),
                    ReadOutcome::Frame(frame) => match codec::decode::<ServerReport>(frame) {
                        Ok(ServerReport::Exited { exitcode }) => return Ok(Some(exitcode)),
                        Ok(ServerReport::Started { .. } | ServerReport::Failed { .. }) => continue,
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
                    },
                    ReadOutcome::Eof => {
                        // The fork server died before reporting; its death
                        // signal kills the child, so its end is imminent.
                        let deadline = Instant::now() + Duration::from_secs(5);
                        sys::poll::wait_readable([pidfd.as_fd()], Some(deadline))?;
                        return Ok(Some(-sys::process::SIGKILL));
                    }
                }
            },
        }
    }

    /// Sends `signal` to the child, unless it has ended.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        match self {
            ChildWatch::Direct { pidfd, .. } | ChildWatch::Served { pidfd, .. } => {
                sys::process::pidfd_send_signal(pidfd.as_fd(), signal)
            }
        }
    }
}

/// One child of this process, shared by its `Process` handle and the table
/// of live children.
#[derive(Debug)]
pub(crate) struct ChildEntry {
    pid: u32,
    name: String,
    daemon: bool,
    watch: Mutex<ChildWatch>,
    /// A duplicate of the watch's sentinel, to wait on without the lock.
    sentinel: OwnedFd,
    exitcode: OnceLock<i32>,
}

impl ChildEntry {
    /// Records a started child in the table of live children.
    pub(crate) fn register(watch: ChildWatch, name: String, daemon: bool) -> io::Result<Arc<Self>> {
        let entry = Arc::new(ChildEntry {
            pid: watch.pid(),
            sentinel: watch.sentinel().try_clone_to_owned()?,
            name,
            daemon,
            watch: Mutex::new(watch),
            exitcode: OnceLock::new(),
        });
        static AT_EXIT: Once = Once::new();
        AT_EXIT.call_once(|| {
            if let Err(e) = sys::process::at_exit(end_children_at_exit) {
                log::warn!("multiproc: children will not be joined at exit: {e}");
            }
        });
        let mut table = CHILDREN.lock();
        table.retain(|c| matches!(c.exitcode(), Ok(None)));
        table.push(entry.clone());
        Ok(entry)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// An fd that becomes readable when the child may have ended.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        self.sentinel.as_fd()
    }

    /// The exit code if the child has ended (reaping it), without waiting.
    pub(crate) fn exitcode(&self) -> io::Result<Option<i32>> {
        if let Some(code) = self.exitcode.get() {
            return Ok(Some(*code));
        }
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(code) = self.exitcode.get() {
            return Ok(Some(*code));
        }
        let code = watch.try_exitcode()?;
        if let Some(code) = code {
            let _ = self.exitcode.set(code);
        }
        Ok(code)
    }

    /// Waits until the child ends or `deadline` passes.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<Option<i32>> {
        loop {
            if let Some(code) = self.exitcode()? {
                return Ok(Some(code));
            }
            let [ready] = sys::poll::wait_readable([self.sentinel()], deadline)?;
            if !ready {
                return self.exitcode();
            }
        }
    }

    /// Sends `signal`, unless the child has already been reaped.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        if self.exitcode.get().is_some() {
            return Ok(());
        }
        let watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        watch.signal(signal)
    }

    /// Drops the child from the table of live children (after a join).
    pub(crate) fn forget(&self) {
        CHILDREN.lock().retain(|c| c.pid != self.pid);
    }
}

static CHILDREN: ForkMutex<Vec<Arc<ChildEntry>>> = ForkMutex::new(Vec::new());

/// The children that are still running; finished ones are reaped and
/// dropped from the table first.
pub(crate) fn active() -> Vec<Arc<ChildEntry>> {
    let mut table = CHILDREN.lock();
    table.retain(|c| matches!(c.exitcode(), Ok(None)));
    table.clone()
}

/// How long daemonic children get to exit after SIGTERM at the parent's exit
/// before they are killed.
const DAEMON_GRACE: Duration = Duration::from_secs(1);

/// At exit, as Python does: daemonic children are terminated, the others
/// joined; every child is reaped.
extern "C" fn end_children_at_exit() {
    let children = active();
    for child in children.iter().filter(|c| c.daemon) {
        let _ = child.signal(sys::process::SIGTERM);
    }
    let grace = Instant::now() + DAEMON_GRACE;
    for child in &children {
        if child.daemon && matches!(child.wait(Some(grace)), Ok(None)) {
            let _ = child.signal(sys::process::SIGKILL);
        }
        let _ = child.wait(None);
    }
}

/// See [`super::reset_after_fork`].
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    CHILDREN.reinit_in_child(proof, Vec::new());
}
