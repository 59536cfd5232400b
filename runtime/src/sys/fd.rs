//! File descriptors: adopting inherited ones, closing the rest.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;
use super::fork_mutex::ForkMutex;
use super::process::ForkedChild;

/// Takes ownership of a socket fd this process inherited by number (through
/// `exec`), after checking that the number is open and is a socket.
///
/// The fd is marked close-on-exec so that it is not inherited further.
pub(crate) fn adopt_inherited_socket(raw: RawFd) -> io::Result<OwnedFd> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is a standard stream, not a channel"),
        ));
    }
    // SAFETY: F_GETFD only reads the flags of `raw`; on a closed number it
    // fails with EBADF and touches nothing.
    let flags = cvt(unsafe { libc::fcntl(raw, libc::F_GETFD) })?;
    // SAFETY: `stat` is plain data; an all-zero value is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `raw` is open (checked above) and `st` is a valid out-pointer.
    cvt(unsafe { libc::fstat(raw, &mut st) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("fd {raw} is not a socket")));
    }
    // SAFETY: only sets the close-on-exec flag of an fd known to be open.
    cvt(unsafe { libc::fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the fd is open, and nothing else in this process owns it: it
    // was inherited through `exec` for exactly this purpose, and the caller
    // adopts it once.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Closes every fd above 2 except `keep`.
///
/// Async-signal-safe: used right after `fork`, before the child reads
/// anything. It does not run destructors; the `OwnedFd`s of the copied
/// address space that named these numbers must not be used again.
pub(crate) fn close_all_except(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range only closes fds; with flags 0 it has no other effect.
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, keep - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0u32);
    }
}

/// How [`flock`] locks a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileLock {
    /// Many holders at once.
    Shared,
    /// One holder, and no shared one.
    Exclusive,
}

/// Takes a `flock` lock on the open file `fd` refers to, waiting for it.
///
/// The lock belongs to the open file description, not to the process: every
/// fd that shares it (a `dup`, a copy sent to another process) holds it, and
/// it goes away when the last of them is closed, however that process ends.
pub(crate) fn flock(fd: BorrowedFd<'_>, lock: FileLock) -> io::Result<()> {
    let op = match lock {
        FileLock::Shared => libc::LOCK_SH,
        FileLock::Exclusive => libc::LOCK_EX,
    };
    // SAFETY: flock only changes the lock of an open fd.
    super::cvt_retry(|| unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop)
}

/// Points the standard streams at `/dev/null`, for a process that must not
/// keep its parent's terminal or pipes open.
pub(crate) fn null_standard_streams() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for target in 0..3 {
        // SAFETY: dup2 only changes what the standard stream numbers refer
        // to; `null` stays open and owned.
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// The fd of a handle (a `Connection`, ...): an `OwnedFd` that a child
/// forked from this process does not keep.
///
/// `fork` copies every fd. A child that kept a copy of, say, the parent's
/// end of a pipe would keep that pipe open after the parent dropped its
/// end, and the other side would never see end of file. So every live
/// `HandleFd` is recorded, and a forked child points each recorded number
/// at a dead socket instead ([`disarm_handles_in_child`]). The number stays
/// valid (the copied `HandleFd` still owns it and closes it on drop), but no
/// longer refers to the parent's file.
#[derive(Debug)]
pub(crate) struct HandleFd(OwnedFd);

static HANDLES: ForkMutex<Vec<RawFd>> = ForkMutex::new(Vec::new());

impl HandleFd {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        HANDLES.lock().push(fd.as_raw_fd());
        HandleFd(fd)
    }
}

impl AsFd for HandleFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Drop for HandleFd {
    fn drop(&mut self) {
        let raw = self.0.as_raw_fd();
        let mut handles = HANDLES.lock();
        if let Some(i) = handles.iter().rposition(|fd| *fd == raw) {
            handles.swap_remove(i);
        }
    }
}

/// In a freshly forked child: points the fd of every handle inherited from
/// the parent at a dead socket (reads give end of file, writes `EPIPE`).
pub(crate) fn disarm_handles_in_child(proof: &ForkedChild) {
    let inherited = std::mem::take(&mut *HANDLES.lock());
    HANDLES.reinit_in_child(proof, Vec::new());
    let Ok((dead, peer)) = super::socket::socketpair() else { return };
    drop(peer);
    for raw in inherited {
        // SAFETY: dup3 only changes what the number `raw` refers to; the
        // number stays open and owned by the same copied `HandleFd`.
        unsafe { libc::dup3(dead.as_raw_fd(), raw, libc::O_CLOEXEC) };
    }
}
