//! Connections: message channels between processes, and to Python.
//!
//! A [`Connection`] is one end of a stream socket that carries whole
//! messages, framed as CPython's `multiprocessing.connection` frames them,
//! so raw byte messages ([`send_bytes`](Connection::send_bytes),
//! [`recv_bytes`](Connection::recv_bytes)) can be exchanged with Python. It
//! is a handle: it can be an argument of a remote fn or be sent through
//! another connection, and its fd travels with it.

mod address;
pub(crate) mod auth;
mod channel;
mod listener;
mod wait;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, ByteBuf, Bytes, Encoded, FrameReader, RecvFd, SendFd};
use crate::error::{Error, Result};
use crate::sys;

pub use address::{Address, IntoAddress};
pub(crate) use channel::Channel;
pub use listener::{CONNECT_TIMEOUT, Client, HANDSHAKE_TIMEOUT, Listener};
pub use wait::{Waitable, wait};

/// One end of a message channel carrying values of type `T` (with
/// [`send`](Connection::send) and [`recv`](Connection::recv)) and raw byte
/// messages (with [`send_bytes`](Connection::send_bytes) and
/// [`recv_bytes`](Connection::recv_bytes)).
///
/// Messages keep their boundaries: one `send` is one `recv`, and an empty
/// message is a message. Methods take `&self`; concurrent senders (or
/// receivers) on one end take turns, a message at a time. Dropping the end
/// (or [`close`](Connection::close)) closes it: the peer's `recv` then
/// returns [`Error::Closed`] once it has read what was sent before.
///
/// A child started with [`StartMethod::Fork`](crate::StartMethod::Fork)
/// does not inherit the parent's connections (unlike in Python, where a
/// forked child keeps a copy of every pipe end, so the peer may never see
/// end of file): only those passed to it as arguments reach it.
pub struct Connection<T> {
    pub(crate) channel: Channel,
    readable: bool,
    writable: bool,
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
    Ok((Connection::from_fd(a, true), Connection::from_fd(b, true)))
}

/// A one-way pair `(reader, writer)`, Python's `Pipe(duplex=False)`: the
/// reader only receives and the writer only sends; the other direction is
/// an error.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// let (reader, writer) = multiproc::connection::pipe_oneway::<u32>()?;
/// writer.send(7)?;
/// assert_eq!(reader.recv()?, 7);
/// assert!(reader.send(8).is_err());
/// assert!(writer.recv().is_err());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Io`] if the system is out of fds.
pub fn pipe_oneway<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (r, w) = sys::socket::socketpair()?;
    let (r, w) = (UnixStream::from(r), UnixStream::from(w));
    r.shutdown(std::net::Shutdown::Write)?;
    w.shutdown(std::net::Shutdown::Read)?;
    let mut reader = Connection::from_fd(r.into(), true);
    reader.writable = false;
    let mut writer = Connection::from_fd(w.into(), true);
    writer.readable = false;
    Ok((reader, writer))
}

impl<T> Connection<T> {
    /// Wraps a connected stream socket; `local` if it is a Unix socket.
    pub(crate) fn from_fd(fd: OwnedFd, local: bool) -> Self {
        Connection::from_channel(Channel::new(fd, local))
    }

    fn from_channel(channel: Channel) -> Self {
        Connection { channel, readable: true, writable: true, _items: PhantomData }
    }

    fn check_readable(&self) -> Result<()> {
        if self.readable { Ok(()) } else { Err(direction_error("connection is write-only")) }
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable { Ok(()) } else { Err(direction_error("connection is read-only")) }
    }

    fn read(&self) -> Result<Encoded> {
        self.check_readable()?;
        self.channel.recv(None)
    }

    /// True unless this is the writing end of a one-way pipe.
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// True unless this is the reading end of a one-way pipe.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Sends `bytes` as one message. To send part of a buffer, send a
    /// slice of it: `conn.send_bytes(&buf[5..10])`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the peer has closed its end; [`Error::Io`] on a
    /// read-only end.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.channel.send(bytes, &[])
    }

    /// Receives one message as bytes, waiting for it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the peer closed its end and everything it sent
    /// has been read; [`Error::Io`] (`UnexpectedEof`) if it closed in the
    /// middle of a message; [`Error::MessageTooLong`] if the message is over
    /// [`set_max_message_len`](Connection::set_max_message_len).
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.read()?.bytes)
    }

    /// Receives one message into `buf`, returning its length.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"0123456789")?;
    /// a.send_bytes(b"ok")?;
    /// let mut small = [0u8; 4];
    /// match b.recv_bytes_into(&mut small) {
    ///     Err(multiproc::Error::BufferTooShort(whole)) => assert_eq!(whole, b"0123456789"),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(b.recv_bytes_into(&mut small)?, 2); // the stream goes on
    /// assert_eq!(&small[..2], b"ok");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooShort`], holding the whole message, if `buf` is
    /// smaller than it; the message is consumed and the next one reads
    /// cleanly. Otherwise as [`recv_bytes`](Connection::recv_bytes).
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize> {
        self.check_readable()?;
        self.channel.recv_into(buf)
    }

    /// Refuses received messages longer than `max` bytes: such a message is
    /// skipped without being buffered, and its receive returns
    /// [`Error::MessageTooLong`]. There is no limit by default, as in Python.
    pub fn set_max_message_len(&self, max: usize) {
        self.channel.reader().set_max_len(max);
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
    /// [`Error::Io`] if polling fails or this is a write-only end.
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.check_readable()?;
        self.channel.poll(Some(Instant::now() + timeout))
    }

    /// Closes this end. Dropping it does the same; this is for code that
    /// reads better with the close written out.
    pub fn close(self) {}
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `item` as one message. Handles inside it (connections, ...)
    /// travel with it over a local connection.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if `item` cannot be encoded, or holds handles and
    /// this is a TCP connection (nothing is sent then); [`Error::Closed`] if
    /// the peer has closed its end.
    pub fn send(&self, item: T) -> Result<()> {
        self.check_writable()?;
        let encoded = codec::encode(&item)?;
        let fds: Vec<_> = encoded.fds.iter().map(AsFd::as_fd).collect();
        self.channel.send(&encoded.bytes, &fds)
    }

    /// Receives one item, waiting for it.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Connection::recv_bytes), and [`Error::Codec`] if
    /// the message is not an encoded `T` (the stream goes on).
    pub fn recv(&self) -> Result<T> {
        codec::decode(self.read()?)
    }
}

#[cfg(feature = "pickle")]
impl<T> Connection<T> {
    /// Sends `value` as a pickle (protocol 4), as Python's
    /// `Connection.send(obj)` does, so that a Python peer's `recv()` gets
    /// the corresponding Python value: a struct or map becomes a `dict`, a
    /// sequence a `list`, a tuple a `tuple`, `None`/`Option` `None`.
    /// [`serde_bytes`](https://docs.rs/serde_bytes) values become `bytes`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_pickle(&("job", 7u32, vec![1.5f64, 2.5]))?;
    /// let (name, n, xs): (String, u32, Vec<f64>) = b.recv_pickle()?;
    /// assert_eq!((name.as_str(), n, xs), ("job", 7, vec![1.5, 2.5]));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if `value` has no pickle form (a dict key that is
    /// a list or dict, which Python cannot hash); nothing is sent then.
    /// Otherwise as [`send_bytes`](Connection::send_bytes).
    pub fn send_pickle<V: Serialize + ?Sized>(&self, value: &V) -> Result<()> {
        self.check_writable()?;
        let bytes = codec::pickle::to_pickle(value, codec::pickle::DEFAULT_PROTOCOL)?;
        self.channel.send(&bytes, &[])
    }

    /// Receives one message that a Python peer sent with
    /// `Connection.send(obj)` and decodes it into a `V`, never executing
    /// code: pickles of builtin values (`None`, `bool`, `int`, `float`,
    /// `str`, `bytes`, `list`, `tuple`, `dict`, `set`) of protocols 0 to 5
    /// decode; one that names any other class or function is refused.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] if the message is not such a pickle or its value
    /// does not fit a `V` (the error says where); the stream goes on.
    /// Otherwise as [`recv_bytes`](Connection::recv_bytes).
    pub fn recv_pickle<V: DeserializeOwned>(&self) -> Result<V> {
        codec::pickle::from_pickle(&self.read()?.bytes)
    }
}

fn direction_error(what: &str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::Unsupported, what))
}

impl<T> AsFd for Connection<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.channel.as_fd()
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.channel.as_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("items", &std::any::type_name::<T>())
            .finish()
    }
}

// A connection travels as its socket, its direction, and what its reader
// has received and not handed out yet (read ahead of the messages read so
// far), with the handles that came with those bytes: the receiving process
// goes on reading exactly where this one stopped.
impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reader = self.channel.reader();
        if reader.is_mid_frame() {
            return Err(codec::ser_error(
                "a connection cannot be sent while part of a message is read from it",
            ));
        }
        let (bytes, fds) = reader.pending();
        let fds: Vec<(u64, Vec<SendFd<'_>>)> =
            fds.into_iter().map(|(at, fds)| (at, fds.into_iter().map(SendFd).collect())).collect();
        (
            SendFd(self.channel.as_fd()),
            self.channel.is_local(),
            self.readable,
            self.writable,
            Bytes(bytes),
            fds,
        )
            .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        type Wire = (RecvFd, bool, bool, bool, ByteBuf, Vec<(u64, Vec<RecvFd>)>);
        let (RecvFd(fd), local, readable, writable, ByteBuf(bytes), fds): Wire =
            Deserialize::deserialize(deserializer)?;
        let fds =
            fds.into_iter().map(|(at, fds)| (at, fds.into_iter().map(|RecvFd(fd)| fd).collect())).collect();
        let reader = FrameReader::resume(usize::MAX, bytes, fds);
        let mut conn = Connection::from_channel(Channel::resume(fd, local, reader));
        conn.readable = readable;
        conn.writable = writable;
        Ok(conn)
    }
}
