//! Waiting on several connections, listeners and processes at once.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::{Connection, Listener};
use crate::error::Result;
use crate::process::Process;
use crate::sys;

/// Something [`wait`] can wait on: a [`Connection`] (a message or the
/// peer's close is pending), a [`Listener`] (a connection is waiting) or a
/// [`Process`] (it has ended).
pub trait Waitable {
    /// The fd that becomes readable when the object is ready.
    #[doc(hidden)]
    fn ready_fd(&self) -> BorrowedFd<'_>;

    /// True if the object is ready whatever its fd says (a connection that
    /// has a whole message received already).
    #[doc(hidden)]
    fn ready_now(&self) -> bool {
        false
    }
}

impl<T> Waitable for Connection<T> {
    fn ready_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn ready_now(&self) -> bool {
        self.channel.has_frame()
    }
}

impl Waitable for Listener {
    fn ready_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl<T> Waitable for Process<T> {
    fn ready_fd(&self) -> BorrowedFd<'_> {
        self.sentinel()
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes
/// (`None`: no limit), and returns the indices of the ready ones, in order;
/// empty when the time ran out. Python's
/// `multiprocessing.connection.wait`, with indices instead of the objects.
///
/// ```
/// use std::time::Duration;
/// use multiproc::connection::wait;
///
/// # fn main() -> multiproc::Result<()> {
/// let (a, b) = multiproc::pipe::<u8>()?;
/// let (c, d) = multiproc::pipe::<u8>()?;
/// assert!(wait(&[&b, &d], Some(Duration::from_millis(10)))?.is_empty());
/// c.send(1)?;
/// assert_eq!(wait(&[&b, &d], None)?, vec![1]);
/// # drop(a);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) if polling fails.
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let fds: Vec<BorrowedFd<'_>> = objects.iter().map(|o| o.ready_fd()).collect();
    let ready_now: Vec<bool> = objects.iter().map(|o| o.ready_now()).collect();
    // With something ready already, only look at the others.
    let deadline =
        if ready_now.contains(&true) { Some(Instant::now()) } else { timeout.map(|t| Instant::now() + t) };
    let mut ready = sys::poll::wait_readable_many(&fds, deadline)?;
    for (ready, now) in ready.iter_mut().zip(ready_now) {
        *ready |= now;
    }
    Ok(ready.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect())
}
