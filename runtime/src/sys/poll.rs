//! Waiting for fds to become readable.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Instant;

use super::cvt;

/// Waits until at least one of `fds` is readable (or at end of file, or in
/// error), or until `deadline` passes (`None`: no deadline). Returns one
/// flag per fd.
pub(crate) fn wait_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    deadline: Option<Instant>,
) -> io::Result<[bool; N]> {
    let mut pollfds = fds.map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
        };
        let ts = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `pollfds` is a valid array of N pollfd structs and `ts` is
        // null or points to a live timespec.
        let res = cvt(unsafe { libc::ppoll(pollfds.as_mut_ptr(), N as libc::nfds_t, ts, std::ptr::null()) });
        match res {
            // A signal handler ran: wait again for the time that is left.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => continue,
            Ok(_) => return Ok(pollfds.map(|p| p.revents != 0)),
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `fd` has room to write, or until `deadline` passes. False
/// if the time ran out.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    let mut pollfd = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 }];
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                d.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000).min(i32::MAX as u128)
                    as libc::c_int
            }
        };
        // SAFETY: `pollfd` is a valid array of one entry.
        match cvt(unsafe { libc::poll(pollfd.as_mut_ptr(), 1, timeout_ms) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => continue,
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Like [`wait_readable`] for a list whose length is known only at run time.
pub(crate) fn wait_readable_many(fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> io::Result<Vec<bool>> {
    let mut pollfds: Vec<libc::pollfd> =
        fds.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `pollfds` is a valid array of `pollfds.len()` entries.
        let res = cvt(unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout_ms) });
        match res {
            // A signal handler ran: wait again for the time that is left.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => continue,
            Ok(_) => return Ok(pollfds.iter().map(|p| p.revents != 0).collect()),
            Err(e) => return Err(e),
        }
    }
}
