//! The tracker: a process that outlives the one that started it and removes
//! the named files (shared memory blocks) that process created or opened,
//! once no process has them open any more.
//!
//! Every process that uses a named block holds a shared `flock` on its own
//! open file of it, and the lock goes away with the file, however the
//! process ends (SIGKILL included). A process tells its tracker about each
//! block over a socket. When the socket reaches end of file (the process
//! ended), the tracker asks for an exclusive lock on each block it was told
//! about, gets it once the last user is gone, and then removes the name,
//! unless the name now refers to another file, or the block was marked to
//! be kept.
//!
//! The tracker runs in its own session, with no terminal and its standard
//! streams on `/dev/null`: a Ctrl-C, a signal to the process group or a
//! harness reading the parent's output until end of file does not involve
//! it. It ignores SIGINT, SIGTERM and SIGHUP, as CPython's resource tracker
//! ignores SIGINT and SIGTERM.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec::{self, FrameReader, ReadOutcome, RecvFd, SendFd};
use crate::sys;
use crate::sys::fd::{FileLock, HandleFd};
use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::ForkedChild;

use super::{bootstrap, launcher};

/// This process's end of its tracker's socket, once a tracker is started.
static CHANNEL: ForkMutex<Option<HandleFd>> = ForkMutex::new(None);

/// The file mode bit that marks a block to be kept: the tracker of no
/// process removes it. (The sticky bit means nothing else on a file.)
pub(crate) const KEEP_BIT: u32 = libc::S_ISVTX;

#[derive(Debug, Serialize, Deserialize)]
enum Op {
    /// Remove the name once nothing has the file open.
    Track(PathBuf),
    /// Leave the file alone after all.
    Forget,
}

/// Has the tracker remove `path`, the name of `file`, once no process has
/// the file open.
pub(crate) fn track(path: &Path, file: BorrowedFd<'_>) -> io::Result<()> {
    send(Op::Track(path.to_owned()), file)
}

/// Takes `file` off the tracker's list.
pub(crate) fn forget(file: BorrowedFd<'_>) -> io::Result<()> {
    send(Op::Forget, file)
}

fn send(op: Op, file: BorrowedFd<'_>) -> io::Result<()> {
    let frame = codec::encode(&(&op, SendFd(file))).map_err(io::Error::other)?;
    let fds: Vec<_> = frame.fds.iter().map(AsFd::as_fd).collect();
    let mut channel = CHANNEL.lock();
    if let Some(tracker) = channel.as_ref() {
        match codec::write_frame(tracker.as_fd(), &frame.bytes, &fds) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe || e.kind() == io::ErrorKind::ConnectionReset => {
                log::warn!(
                    "multiproc: the shared memory tracker died; the blocks this process told it about \
                     will not be removed when this process ends"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let tracker = start()?;
    codec::write_frame(tracker.as_fd(), &frame.bytes, &fds)?;
    *channel = Some(tracker);
    Ok(())
}

fn start() -> io::Result<HandleFd> {
    let (ours, theirs) = sys::socket::socketpair()?;
    let image = bootstrap::child_image(bootstrap::Role::Tracker)?;
    launcher::spawn_detached(image, theirs)?;
    Ok(HandleFd::new(ours))
}

/// See [`super::reset_after_fork`]: a forked child starts its own tracker
/// if it needs one.
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    CHANNEL.reinit_in_child(proof, None);
}

/// A block the tracker watches: its name, and its own open file of it
/// (without a lock until the end).
struct Tracked {
    path: PathBuf,
    file: File,
}

/// The tracker process: collects blocks until the socket closes, then
/// removes each once it is unused, and exits.
pub(crate) fn serve(channel: OwnedFd) -> ! {
    // Without a session of its own, the tracker would still work, but a
    // Ctrl-C could take it down with the program.
    let _ = sys::process::detach();
    for signal in [sys::process::SIGINT, sys::process::SIGTERM, sys::process::SIGHUP, sys::process::SIGPIPE] {
        sys::process::ignore_signal(signal);
    }
    let _ = sys::fd::null_standard_streams();
    sys::process::set_comm(std::ffi::OsStr::new("multiproc-track"));

    let mut tracked: Vec<Tracked> = Vec::new();
    let mut reader = FrameReader::new(64 << 10);
    // A malformed message cannot come from the runtime: it ends the
    // collecting as end of file does. Removing is safe either way: it waits
    // for every user of a block to be gone.
    while let Ok(ReadOutcome::Frame(frame)) = reader.read(channel.as_fd(), false) {
        let Ok((op, RecvFd(fd))) = codec::decode::<(Op, RecvFd)>(frame) else { break };
        let Ok(id) = identity(&File::from(fd)) else { continue };
        match op {
            Op::Track(path) => {
                if tracked.iter().all(|t| identity(&t.file).ok() != Some(id))
                    && let Ok(file) = reopen(&id, &path)
                {
                    tracked.push(Tracked { path, file });
                }
            }
            Op::Forget => tracked.retain(|t| identity(&t.file).ok() != Some(id)),
        }
    }
    drop(channel);
    let removers: Vec<_> = tracked
        .into_iter()
        .filter_map(|t| std::thread::Builder::new().spawn(move || remove_when_unused(t)).ok())
        .collect();
    for remover in removers {
        let _ = remover.join();
    }
    sys::process::exit_immediately(0)
}

/// Opens a file of the tracker's own for the block `id` named `path`: a file
/// shared with the sender would share its lock.
fn reopen(id: &(u64, u64), path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    if identity(&file)? != *id {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the name refers to another file now"));
    }
    Ok(file)
}

fn identity(file: &File) -> io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Waits until nothing else has the block open, then removes its name if
/// the name still refers to it and it is not to be kept.
fn remove_when_unused(tracked: Tracked) {
    if sys::fd::flock(tracked.file.as_fd(), FileLock::Exclusive).is_err() {
        return;
    }
    let Ok(meta) = tracked.file.metadata() else { return };
    if meta.mode() & KEEP_BIT != 0 {
        return;
    }
    if let Ok(named) = std::fs::symlink_metadata(&tracked.path)
        && (named.dev(), named.ino()) == (meta.dev(), meta.ino())
    {
        let _ = std::fs::remove_file(&tracked.path);
    }
    // The lock is let go only now, with the file: a process that opened
    // the name meanwhile waits for it, then finds the name gone.
    drop(tracked);
}
