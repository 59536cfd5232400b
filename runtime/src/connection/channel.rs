//! A framed stream socket: the untyped layer under [`Connection`].
//!
//! [`Connection`]: super::Connection

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::codec::{self, Encoded, FrameReader, FrameTooLong, IntoOutcome, ReadOutcome};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::fd::HandleFd;

/// One end of a stream socket carrying whole frames. Sends (and receives)
/// from several threads take turns, a frame at a time.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: HandleFd,
    /// A Unix socket, which can carry fds beside the bytes; TCP cannot.
    local: bool,
    reader: Mutex<FrameReader>,
    writer: Mutex<()>,
}

impl Channel {
    pub(crate) fn new(fd: OwnedFd, local: bool) -> Self {
        Channel::resume(fd, local, FrameReader::read_ahead(usize::MAX))
    }

    /// A channel whose reader already holds what another process had
    /// received from the socket (see [`FrameReader::pending`]).
    pub(crate) fn resume(fd: OwnedFd, local: bool, reader: FrameReader) -> Self {
        Channel { fd: HandleFd::new(fd), local, reader: Mutex::new(reader), writer: Mutex::new(()) }
    }

    pub(crate) fn is_local(&self) -> bool {
        self.local
    }

    pub(crate) fn reader(&self) -> MutexGuard<'_, FrameReader> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one frame, with `fds` attached.
    pub(crate) fn send(&self, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        if !fds.is_empty() && !self.local {
            return Err(Error::Codec(
                "handles (connections, queues, locks) can only be sent over a local connection, \
                 not over TCP"
                    .to_owned(),
            ));
        }
        let _turn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        codec::write_frame(self.fd.as_fd(), payload, fds).map_err(closed_or_io)
    }

    /// Sends several frames without fds, together, each payload in two
    /// parts.
    pub(crate) fn send_batch(&self, payloads: &[[&[u8]; 2]]) -> Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let _turn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        codec::write_frames(self.fd.as_fd(), payloads).map_err(closed_or_io)
    }

    /// Receives one frame, waiting until `deadline` at most (`None`: no
    /// limit). Running out of time is [`Error::Timeout`], and what arrived
    /// of a frame is kept for the next call.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Encoded> {
        self.receive(deadline, Duration::ZERO)
    }

    /// Receives one frame, looking for it without sleeping for up to
    /// `spin` first (yielding the CPU between looks), then waiting as
    /// [`recv`](Channel::recv) does: for a call whose answer comes within
    /// microseconds, waking a sleeping process costs more than the call on
    /// machines where a wake-up across cores takes tens of microseconds.
    pub(crate) fn recv_spinning(&self, spin: Duration) -> Result<Encoded> {
        self.receive(None, spin)
    }

    fn receive(&self, deadline: Option<Instant>, spin: Duration) -> Result<Encoded> {
        let mut reader = self.reader();
        let spin_until = (!spin.is_zero()).then(|| Instant::now() + spin);
        loop {
            let looking = spin_until.is_some_and(|until| Instant::now() < until);
            match reader.read(self.fd.as_fd(), deadline.is_some() || looking).map_err(closed_or_io)? {
                ReadOutcome::Frame(frame) => return Ok(frame),
                ReadOutcome::Eof => return Err(Error::Closed),
                ReadOutcome::WouldBlock if looking => std::thread::yield_now(),
                ReadOutcome::WouldBlock => {
                    let [ready] = sys::poll::wait_readable([self.fd.as_fd()], deadline)?;
                    if !ready {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }

    /// Receives one frame into `buf`, waiting for it, and returns its
    /// length; [`Error::BufferTooShort`] holds a frame that does not fit.
    /// Handles that came with the frame are closed, as bytes cannot hold
    /// them.
    pub(crate) fn recv_into(&self, buf: &mut [u8]) -> Result<usize> {
        match self.reader().read_into(self.fd.as_fd(), buf).map_err(closed_or_io)? {
            IntoOutcome::Read(len, _fds) => Ok(len),
            IntoOutcome::TooLong(frame) => Err(Error::BufferTooShort(frame.bytes)),
            IntoOutcome::Eof => Err(Error::Closed),
        }
    }

    /// True if a whole frame has been received and is waiting to be read.
    pub(crate) fn has_frame(&self) -> bool {
        self.reader().has_frame()
    }

    /// Waits until `deadline` for something to read (or end of file).
    pub(crate) fn poll(&self, deadline: Option<Instant>) -> Result<bool> {
        if self.has_frame() {
            return Ok(true);
        }
        Ok(sys::poll::wait_readable([self.fd.as_fd()], deadline)?[0])
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn closed_or_io(e: io::Error) -> Error {
    if let Some(FrameTooLong { len, max }) = e.get_ref().and_then(|inner| inner.downcast_ref()) {
        return Error::MessageTooLong { len: *len as u64, max: *max };
    }
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Error::Closed,
        _ => Error::Io(e),
    }
}
