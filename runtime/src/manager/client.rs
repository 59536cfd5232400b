//! The proxies' side: where an object lives, and the connections to its
//! server, kept for reuse by every proxy of this process.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::protocol::{Holder, Reply, Request};
use crate::codec::{self, Encoded};
use crate::connection::{Address, Client, Connection};
use crate::error::{Error, Result};
use crate::start::AfterFork;
use crate::sys::fork_mutex::ForkMutex;

/// Where a server is and the key it wants.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Server {
    pub(crate) address: Address,
    pub(crate) authkey: Option<Vec<u8>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Server").field("address", &self.address).finish_non_exhaustive()
    }
}

/// Idle connections to servers, for this process only: a `Fork` child
/// starts with none rather than share its parent's sockets (it forgets
/// the copies it inherited, which point at a dead socket).
struct Idle {
    by_server: HashMap<Server, Vec<Connection<()>>>,
    /// This process's number for the servers, and per server the session
    /// connection whose end tells the server that this process has gone.
    token: u64,
    sessions: HashMap<Server, Connection<()>>,
}

static IDLE: ForkMutex<Option<Idle>> = ForkMutex::new(None);

inventory::submit! {
    AfterFork(|proof| IDLE.reinit_in_child(proof, None))
}

/// At most this many idle connections are kept per server.
const KEEP: usize = 16;

impl Server {
    fn connect(&self) -> Result<Connection<()>> {
        Client::connect(self.address.clone(), self.authkey.as_deref()).map_err(|e| self.gone(e))
    }

    /// A connection that broke, or a server that is not there, is a server
    /// that is gone: its idle connections and session are dropped (they
    /// would be open fds for nothing). A wrong key stays what it is.
    fn gone(&self, e: Error) -> Error {
        match e {
            Error::Io(ref io) if is_gone(io.kind()) => {
                self.forget();
                Error::Closed
            }
            other => other,
        }
    }

    /// Closes this process's idle connections and session to the server.
    pub(crate) fn forget(&self) {
        let _ = with_idle(|idle| {
            idle.by_server.remove(self);
            idle.sessions.remove(self);
        });
    }

    fn give_back(&self, conn: Connection<()>) {
        let _ = with_idle(|idle| {
            let list = idle.by_server.entry(self.clone()).or_default();
            if list.len() < KEEP {
                list.push(conn);
            }
        });
    }

    fn send_on_new(&self, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<Connection<()>> {
        let conn = self.connect()?;
        conn.channel.send(bytes, fds).map_err(|e| self.gone(e))?;
        Ok(conn)
    }

    /// Who this thread of this process is to the server: for objects that
    /// have an owner (a lock). The first time, opens the session whose
    /// end, when this process ends, frees what it holds.
    pub(crate) fn holder(&self) -> Result<Holder> {
        let (token, open) = with_idle(|idle| {
            // A session has nothing to read until its server closes it (a
            // server started again at the same address, say).
            let closed = idle
                .sessions
                .get(self)
                .is_some_and(|s| s.channel.poll(Some(std::time::Instant::now())).unwrap_or(true));
            if closed {
                idle.sessions.remove(self);
            }
            (idle.token, idle.sessions.contains_key(self))
        })?;
        if !open {
            let conn = self.connect()?;
            let encoded = codec::encode(&Request::Session { process: token })?;
            conn.channel.send(&encoded.bytes, &[]).map_err(|e| self.gone(e))?;
            answer::<()>(conn.channel.recv(None).map_err(|e| self.gone(e))?)?;
            with_idle(|idle| {
                idle.sessions.entry(self.clone()).or_insert(conn);
            })?;
        }
        Ok(Holder { process: token, thread: THREAD.with(|t| *t) })
    }

    /// Sends `request` and waits for the answer, an `R`.
    pub(crate) fn request<R: DeserializeOwned>(&self, request: &Request) -> Result<R> {
        let encoded = codec::encode(request)?;
        let fds: Vec<_> = encoded.fds.iter().map(std::os::fd::AsFd::as_fd).collect();
        let idle = with_idle(|idle| idle.by_server.get_mut(self).and_then(Vec::pop))?;
        // An idle connection has nothing to read; one that has, has been
        // closed by its server. A Unix socket says so to `send` (below);
        // over TCP, the first send after the close still succeeds.
        let idle = idle.filter(|conn| {
            conn.channel.is_local() || !conn.channel.poll(Some(std::time::Instant::now())).unwrap_or(true)
        });
        let conn = match idle {
            Some(conn) => match conn.channel.send(&encoded.bytes, &fds) {
                Ok(()) => conn,
                // An idle connection that its server closed (a server
                // started again at the same address, say): the request
                // never left, so it goes on a new connection.
                Err(_) => self.send_on_new(&encoded.bytes, &fds)?,
            },
            None => self.send_on_new(&encoded.bytes, &fds)?,
        };
        let answer_frame = conn.channel.recv_spinning(super::protocol::spin()).map_err(|e| self.gone(e))?;
        // Only a connection that went through a whole call is kept: one
        // that failed half-way may hold an answer nobody reads.
        self.give_back(conn);
        answer(answer_frame)
    }
}

/// The result an answer frame carries, decoded where it lies.
fn answer<R: DeserializeOwned>(frame: Encoded) -> Result<R> {
    let (reply, body) = codec::decode_prefix::<Reply>(&frame.bytes)?;
    match reply {
        Reply::Done => codec::decode_slice(body, frame.fds),
        Reply::Failed(failure) => Err(failure.into_error()),
    }
}

/// Runs `f` on this process's idle connections and sessions, made on
/// first use (and again in a forked child, with a token of its own).
fn with_idle<R>(f: impl FnOnce(&mut Idle) -> R) -> Result<R> {
    let mut idle = IDLE.lock();
    if idle.is_none() {
        *idle = Some(Idle {
            by_server: HashMap::new(),
            token: crate::sys::random::random_u64()?,
            sessions: HashMap::new(),
        });
    }
    Ok(f(idle.as_mut().expect("made above")))
}

thread_local! {
    /// This thread's number among the process's threads.
    static THREAD: u64 = {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    };
}

fn is_gone(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | NotFound | UnexpectedEof
    )
}

/// One object held by a server: what every proxy holds. (Public only to
/// name it in the sealed [`Proxy`](super::Proxy) trait.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub(crate) server: Server,
    pub(crate) id: u64,
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object {} at {}", self.id, self.server.address)
    }
}

impl ObjectRef {
    /// Makes an object of type `typeid` on `server`.
    pub(crate) fn create<I: Serialize>(server: &Server, typeid: &str, init: &I) -> Result<ObjectRef> {
        let request = Request::Create { typeid: typeid.to_owned(), init: codec::encode(init)? };
        let id: u64 = server.request(&request)?;
        Ok(ObjectRef { server: server.clone(), id })
    }

    /// The answer of its `len` method, which every sized object has.
    pub(crate) fn len(&self) -> Result<usize> {
        self.call::<_, u64>("len", &()).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Calls `method` with `args`, decoding the result as an `R`.
    pub(crate) fn call<A: Serialize, R: DeserializeOwned>(&self, method: &str, args: &A) -> Result<R> {
        let request = Request::Call { id: self.id, method: method.to_owned(), args: codec::encode(args)? };
        self.server.request(&request)
    }
}

/// Encodes a value to be kept by the server.
pub(crate) fn value<T: Serialize + ?Sized>(value: &T) -> Result<Encoded> {
    codec::encode(value)
}

/// Encodes a key: a value with no handles, compared by its bytes.
pub(crate) fn key<K: Serialize + ?Sized>(key: &K) -> Result<Encoded> {
    let encoded = codec::encode(key)?;
    check_key(&encoded)?;
    Ok(encoded)
}

/// A key is compared by its bytes, which for a handle say only where it is
/// in the message: keys cannot hold handles.
pub(crate) fn check_key(key: &Encoded) -> Result<()> {
    if key.fds.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_input("a key of a managed object cannot hold handles"))
    }
}

/// Decodes a value the server kept.
pub(crate) fn decode<T: DeserializeOwned>(encoded: Encoded) -> Result<T> {
    codec::decode(encoded)
}
