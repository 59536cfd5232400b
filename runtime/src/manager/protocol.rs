//! What proxies and the manager's server say to each other: one
//! [`Request`] frame, then one answer frame, on a connection that carries
//! one call at a time. The answer is a [`Reply`] followed, when it is
//! [`Reply::Done`], by the encoded result itself (its handles' fds with the
//! frame), which the caller decodes where it lies. Values travel encoded
//! ([`Encoded`]): the server keeps them as bytes (and the fds of their
//! handles) and never needs their types.

use serde::{Deserialize, Serialize};

use crate::codec::Encoded;
use crate::error::{Error, RemoteError};

/// A call to the server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Makes an object of the type registered as `typeid` from `init`;
    /// answered with its id (`u64`).
    Create { typeid: String, init: Encoded },
    /// Calls `method` of object `id` with `args`.
    Call { id: u64, method: String, args: Encoded },
    /// Forgets object `id` and the names it was published under.
    Release { id: u64 },
    /// Publishes object `id` as `name`, replacing what had that name.
    Publish { name: String, id: u64 },
    /// Answered with the id and type of the object published as `name`.
    Lookup { name: String },
    /// Makes this connection the session of client process `process`:
    /// answered with `()`, then never used again; when it ends, the server
    /// frees what that process held.
    Session { process: u64 },
    /// Answered with `()`: the server is there and the key was right.
    Ping,
    /// Stops the server once it has answered.
    Shutdown,
}

/// The server's answer, as the server has it.
#[derive(Debug)]
pub(crate) enum Response {
    /// The encoded result.
    Done(Encoded),
    Failed(Failure),
}

/// The head of the server's answer on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The encoded result follows.
    Done,
    Failed(Failure),
}

impl Response {
    /// The answer's frame and the fds that go with it.
    pub(crate) fn frame(&self) -> crate::error::Result<(Vec<u8>, &[std::os::fd::OwnedFd])> {
        match self {
            Response::Done(value) => {
                Ok((crate::codec::encode_with_body(&Reply::Done, &value.bytes)?, &value.fds))
            }
            Response::Failed(failure) => {
                Ok((crate::codec::encode_with_body(&Reply::Failed(failure.clone()), &[])?, &[]))
            }
        }
    }
}

/// Why a call failed, as the caller will see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// The method panicked in the server (which goes on serving).
    Panicked {
        method: String,
        message: String,
        pid: u32,
        location: Option<String>,
    },
    /// The arguments did not decode as the method's, or its result did not
    /// encode.
    Codec(String),
    /// A request the server cannot serve: no such object, type or method,
    /// or a value the operation cannot take.
    Invalid(String),
    /// A name or key that is not there.
    NotFound(String),
    Empty,
    Full,
    Closed,
    Timeout,
    BrokenBarrier,
}

impl Failure {
    /// The server's account of an error one of its objects returned.
    pub(crate) fn from_error(e: Error) -> Failure {
        match e {
            Error::Codec(msg) => Failure::Codec(msg),
            Error::Remote(r) => {
                Failure::Panicked { method: r.function, message: r.message, pid: r.pid, location: r.location }
            }
            Error::Empty => Failure::Empty,
            Error::Full => Failure::Full,
            Error::Closed => Failure::Closed,
            Error::Timeout => Failure::Timeout,
            Error::BrokenBarrier => Failure::BrokenBarrier,
            Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => Failure::NotFound(e.to_string()),
            other => Failure::Invalid(other.to_string()),
        }
    }

    /// The caller's error.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::Panicked { method, message, pid, location } => {
                Error::Remote(RemoteError { function: method, message, pid, location })
            }
            Failure::Codec(msg) => Error::Codec(msg),
            Failure::Invalid(msg) => Error::invalid_input(msg),
            Failure::NotFound(msg) => Error::not_found(msg),
            Failure::Empty => Error::Empty,
            Failure::Full => Error::Full,
            Failure::Closed => Error::Closed,
            Failure::Timeout => Error::Timeout,
            Failure::BrokenBarrier => Error::BrokenBarrier,
        }
    }
}

/// A thread of a process, as the servers know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) process: u64,
    pub(crate) thread: u64,
}

/// The bytes of `value` to compare (a compare-and-swap): a value holding
/// handles cannot be compared, as its bytes say only where its handles
/// are in the message, not which they are.
pub(crate) fn comparable(value: &Encoded) -> crate::error::Result<&[u8]> {
    if value.fds.is_empty() {
        Ok(&value.bytes)
    } else {
        Err(Error::invalid_input("a value holding handles cannot be compared"))
    }
}

/// How long a side of a call looks for the other's next frame before it
/// sleeps: the client for the answer, the server for the next request.
/// A call takes a few microseconds when both look, against two wake-ups
/// of tens of microseconds each on these machines when they sleep.
pub(crate) fn spin() -> std::time::Duration {
    if crate::process::may_spin() { SPIN_TIME } else { std::time::Duration::ZERO }
}

const SPIN_TIME: std::time::Duration = std::time::Duration::from_micros(50);
