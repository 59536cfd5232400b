//! Connections: message channels between processes.
//!
//! A [`Connection`] is one end of a stream socket that carries whole
//! messages, framed as CPython's `multiprocessing.connection` frames them.
//! It is a handle: it can be an argument of a remote fn, or be sent through
//! another connection, and its fd travels with it.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, Encoded, FrameReader, ReadOutcome};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::fd::HandleFd;

/// One end of a duplex message channel carrying values of type `T` (with
/// [`send`](Connection::send) and [`recv`](Connection::recv)) and raw byte
/// messages (with [`send_bytes`](Connection::send_bytes) and
/// [`recv_bytes`](Connection::recv_bytes)).
///
/// Messages keep their boundaries: one `send` is one `recv`. Methods take
/// `&self`; concurrent senders (or receivers) on one end take turns, a
/// message at a time. Dropping the end closes it: the peer's `recv` then
/// returns [`Error::Closed`] once it has read what was sent before.
///
/// A child started with [`StartMethod::Fork`](crate::StartMethod::Fork)
/// does not inherit the parent's connections (unlike in Python, where a
/// forked child keeps a copy of every pipe end, so the peer may never see
/// end of file): only those passed to it as arguments reach it.
pub struct Connection<T> {
    fd: HandleFd,
    reader: Mutex<FrameReader>,
    writer: Mutex<()>,
    _items: PhantomData<fn(T) -> T>,
}

/// A connected pair of duplex connections: what one end sends, the other
/// receives.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// let (a, b) = multiproc::pipe::<String>()?;
/// a.send("hello".to_string())?;
/// assert_eq!(b.recv()?, "hello");
/// b.send_bytes(b"raw")?;
/// assert_eq!(a.recv_bytes()?, b"raw");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Io`] if the system is out of fds.
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (a, b) = sys::socket::socketpair()?;
    Ok((Connection::from_fd(a), Connection::from_fd(b)))
}

impl<T> Connection<T> {
    fn from_fd(fd: OwnedFd) -> Self {
        Connection {
            fd: HandleFd::new(fd),
            reader: Mutex::new(FrameReader::new(usize::MAX)),
            writer: Mutex::new(()),
            _items: PhantomData,
        }
    }

    fn reader(&self) -> MutexGuard<'_, FrameReader> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        let _turn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        codec::write_frame(self.fd.as_fd(), payload, fds).map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Error::Closed,
            _ => Error::Io(e),
        })
    }

    fn read(&self) -> Result<Encoded> {
        match self.reader().read(self.fd.as_fd(), false)? {
            ReadOutcome::Frame(frame) => Ok(frame),
            ReadOutcome::Eof => Err(Error::Closed),
            ReadOutcome::WouldBlock => unreachable!("a blocking read does not report WouldBlock"),
        }
    }

    /// Sends `bytes` as one message.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the peer has closed its end.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.write(bytes, &[])
    }

    /// Receives one message as bytes, waiting for it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the peer closed its end and everything it sent
    /// has been read; [`Error::Io`] (`UnexpectedEof`) if it closed in the
    /// middle of a message.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.read()?.bytes)
    }

    /// Waits up to `timeout` for something to read. `Ok(true)` if a message
    /// (or the peer's close) is pending; `Duration::ZERO` only looks.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> multiproc::Result<()> {
    /// let (a, b) = multiproc::pipe::<u8>()?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(1)?;
    /// assert!(b.poll(Duration::from_secs(1))?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if polling fails.
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        let [ready] = sys::poll::wait_readable([self.fd.as_fd()], Some(Instant::now() + timeout))?;
        Ok(ready)
    }
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `item` as one message. Handles inside it (connections, ...)
    /// travel with it.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if `item` cannot be encoded (nothing is sent then);
    /// [`Error::Closed`] if the peer has closed its end.
    pub fn send(&self, item: T) -> Result<()> {
        let encoded = codec::encode(&item)?;
        let fds: Vec<_> = encoded.fds.iter().map(AsFd::as_fd).collect();
        self.write(&encoded.bytes, &fds)
    }

    /// Receives one item, waiting for it.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Connection::recv_bytes), and [`Error::Codec`] if
    /// the message is not an encoded `T`.
    pub fn recv(&self) -> Result<T> {
        codec::decode(self.read()?)
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .field("items", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.reader().is_mid_frame() {
            return Err(S::Error::custom(
                "a connection cannot be sent while part of a message is read from it",
            ));
        }
        codec::serialize_fd(self.fd.as_fd(), serializer)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        codec::deserialize_fd(deserializer).map(Connection::from_fd)
    }
}
