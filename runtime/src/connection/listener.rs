//! [`Listener`] and [`Client`]: connections between unrelated processes,
//! over TCP or Unix sockets, optionally authenticated with the handshake of
//! CPython's `multiprocessing.connection`.

use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::address::{Address, IntoAddress, check_unix_path};
use super::auth::{self, Handshake, MAX_HANDSHAKE_FRAME};
use super::{Channel, Connection};
use crate::codec::ReadOutcome;
use crate::error::{Error, Result};
use crate::sys;

/// How long a peer has to complete the authentication handshake, as
/// CPython's `CONNECTION_TIMEOUT`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long [`Client::connect`] keeps retrying a listener whose backlog is
/// full, or (TCP) waits for the connection to be set up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Accepts connections on an address, like Python's
/// `multiprocessing.connection.Listener`.
///
/// With an authkey, every connection must pass CPython's challenge-response
/// handshake (both ways) before [`accept`](Listener::accept) hands it out:
/// a peer with the wrong key gets `#FAILURE#` and `accept` returns
/// [`Error::Auth`]; the listener goes on serving. Handshakes run side by
/// side, so a peer that connects and says nothing delays nobody, and each
/// has [`HANDSHAKE_TIMEOUT`] to finish. Handshake messages are capped at 256
/// bytes, and nothing a peer sends is decoded before it has authenticated.
///
/// A Unix socket file is created with mode 0600 and removed when the
/// listener is dropped; [`bind_private`](Listener::bind_private) puts it in
/// a fresh directory only this user can enter.
///
/// ```
/// use multiproc::connection::{Client, Listener};
///
/// # fn main() -> multiproc::Result<()> {
/// let listener = Listener::bind("127.0.0.1:0", Some(b"secret"))?;
/// let address = listener.address();
/// let client = std::thread::spawn(move || -> multiproc::Result<String> {
///     let conn = Client::connect::<String>(&address, Some(b"secret"))?;
///     conn.send("hello".to_string())?;
///     conn.recv()
/// });
/// let conn = listener.accept::<String>()?;
/// assert_eq!(conn.recv()?, "hello");
/// conn.send("welcome".to_string())?;
/// assert_eq!(client.join().unwrap()?, "welcome");
/// # Ok(())
/// # }
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Option<Vec<u8>>,
    handshake_timeout: Duration,
    pending: Mutex<Vec<Pending>>,
    last_accepted: Mutex<Option<Address>>,
    /// The socket file and, for a private listener, its directory: removed
    /// on drop.
    cleanup: Option<(PathBuf, Option<PathBuf>)>,
}

enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// An accepted connection whose handshake is under way.
struct Pending {
    channel: Channel,
    peer: Option<Address>,
    handshake: Handshake,
    deadline: Instant,
}

impl Listener {
    /// Listens on `address` (TCP `host:port`, a Unix socket path, or
    /// `@name` for an abstract socket). Port 0 picks a free port; see
    /// [`address`](Listener::address). With `authkey`, every connection
    /// must prove it knows the key (and the listener proves it too).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the address is in use, not an address, or a Unix path
    /// too long for the system (which the message says, with what to do).
    pub fn bind(address: impl IntoAddress, authkey: Option<&[u8]>) -> Result<Listener> {
        let address = address.into_address()?;
        let (socket, address, cleanup) = match address {
            Address::Tcp(addr) => {
                let listener = TcpListener::bind(addr)?;
                let bound = listener.local_addr()?;
                (Socket::Tcp(listener), Address::Tcp(bound), None)
            }
            Address::Unix(path) => {
                check_unix_path(&path)?;
                let listener = bind_unix_0600(&path)?;
                (Socket::Unix(listener), Address::Unix(path.clone()), Some((path, None)))
            }
            Address::Abstract(name) => {
                let addr = UnixSocketAddr::from_abstract_name(&name)?;
                (Socket::Unix(UnixListener::bind_addr(&addr)?), Address::Abstract(name), None)
            }
        };
        match &socket {
            Socket::Tcp(l) => l.set_nonblocking(true)?,
            Socket::Unix(l) => l.set_nonblocking(true)?,
        }
        Ok(Listener {
            socket,
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            pending: Mutex::new(Vec::new()),
            last_accepted: Mutex::new(None),
            cleanup,
        })
    }

    /// Listens on a Unix socket in a new directory that only this user can
    /// enter (mode 0700, under `$TMPDIR`, or `/tmp` when `$TMPDIR` would make
    /// the path too long). Both are removed when the listener is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory or socket cannot be created.
    pub fn bind_private(authkey: Option<&[u8]>) -> Result<Listener> {
        let dir = private_dir()?;
        let path = dir.join("listener.sock");
        match Listener::bind(path.as_path(), authkey) {
            Ok(mut listener) => {
                listener.cleanup = Some((path, Some(dir)));
                Ok(listener)
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The address the listener is bound to, with the port filled in.
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// Sets how long a peer has to finish the handshake
    /// ([`HANDSHAKE_TIMEOUT`] by default).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// Waits for a connection and returns it, authenticated if the listener
    /// has an authkey.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] if a peer failed the handshake (wrong key, garbage,
    /// silence past the timeout); that peer is disconnected and the listener
    /// stays usable. [`Error::Io`] if accepting fails.
    pub fn accept<T>(&self) -> Result<Connection<T>> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let deadline = pending.iter().map(|p| p.deadline).min();
            let mut fds: Vec<BorrowedFd<'_>> = vec![self.as_fd()];
            fds.extend(pending.iter().map(|p| p.channel.as_fd()));
            let ready = sys::poll::wait_readable_many(&fds, deadline)?;
            drop(fds);
            // Handshakes first: one that completes (or fails) is an answer.
            for i in (0..pending.len()).rev() {
                if (ready[i + 1] || pending[i].deadline <= Instant::now())
                    && let Some(result) = self.advance(&mut pending, i)
                {
                    return result;
                }
            }
            if ready[0] {
                while let Some((fd, local, peer)) = self.try_accept()? {
                    let channel = Channel::new(fd, local);
                    let Some(key) = &self.authkey else {
                        *self.lock_last_accepted() = peer;
                        return Ok(Connection::from_channel(channel));
                    };
                    channel.reader().set_max_len(MAX_HANDSHAKE_FRAME);
                    let (handshake, challenge) = Handshake::server(key)?;
                    if channel.send(&challenge, &[]).is_ok() {
                        pending.push(Pending {
                            channel,
                            peer,
                            handshake,
                            deadline: Instant::now() + self.handshake_timeout,
                        });
                    }
                }
            }
        }
    }

    /// Moves handshake `i` on with what has arrived. `Some` when it is over:
    /// the authenticated connection, or why the peer was turned away.
    fn advance<T>(&self, pending: &mut Vec<Pending>, i: usize) -> Option<Result<Connection<T>>> {
        let p = &mut pending[i];
        let outcome = loop {
            match p.channel.reader().read(p.channel.as_fd(), true) {
                Ok(ReadOutcome::Frame(frame)) => {
                    let step = p.handshake.receive(&frame.bytes);
                    for reply in &step.send {
                        let _ = p.channel.send(reply, &[]);
                    }
                    if let Some(outcome) = step.outcome {
                        break outcome;
                    }
                }
                Ok(ReadOutcome::WouldBlock) if p.deadline <= Instant::now() => {
                    break Err(Error::Auth(format!(
                        "a peer did not complete the authentication handshake within {:?}",
                        self.handshake_timeout
                    )));
                }
                Ok(ReadOutcome::WouldBlock) => return None,
                Ok(ReadOutcome::Eof) => {
                    break Err(Error::Auth("a peer closed its connection during the handshake".to_owned()));
                }
                Err(e) => break Err(Error::Auth(format!("a peer broke the handshake: {e}"))),
            }
        };
        let p = pending.swap_remove(i);
        Some(outcome.map(|()| {
            p.channel.reader().set_max_len(usize::MAX);
            *self.lock_last_accepted() = p.peer;
            Connection::from_channel(p.channel)
        }))
    }

    /// The address of the peer of the connection [`accept`](Listener::accept)
    /// returned last: a TCP peer's address, or a Unix peer's if it bound
    /// one (clients usually do not: then `None`). Python's `last_accepted`.
    pub fn last_accepted(&self) -> Option<Address> {
        self.lock_last_accepted().clone()
    }

    fn lock_last_accepted(&self) -> std::sync::MutexGuard<'_, Option<Address>> {
        self.last_accepted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts one connection if one is waiting: its socket, whether it is
    /// local, and the peer's address.
    fn try_accept(&self) -> Result<Option<(OwnedFd, bool, Option<Address>)>> {
        let accepted = match &self.socket {
            Socket::Tcp(l) => l.accept().map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                (OwnedFd::from(s), false, Some(Address::Tcp(peer)))
            }),
            Socket::Unix(l) => l.accept().map(|(s, peer)| {
                let peer = match (peer.as_pathname(), peer.as_abstract_name()) {
                    (Some(path), _) => Some(Address::Unix(path.to_path_buf())),
                    (None, Some(name)) => Some(Address::Abstract(name.to_vec())),
                    (None, None) => None,
                };
                (OwnedFd::from(s), true, peer)
            }),
        };
        match accepted {
            Ok((fd, local, peer)) => {
                set_blocking(&fd)?;
                Ok(Some((fd, local, peer)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Unix(l) => l.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, dir)) = &self.cleanup {
            let _ = std::fs::remove_file(path);
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .finish_non_exhaustive()
    }
}

/// Accepted sockets inherit nothing from the listener on Linux, but make the
/// intent plain: connections block, and poll before reading when they must
/// not.
fn set_blocking(fd: &OwnedFd) -> Result<()> {
    let stream = UnixStream::from(fd.try_clone()?);
    stream.set_nonblocking(false)?;
    Ok(())
}

fn private_dir() -> Result<PathBuf> {
    let name = format!("multiproc-{:016x}", sys::random::random_u64()?);
    let mut base = std::env::temp_dir();
    // Room for "/<name>/listener.sock" within the socket path limit.
    if base.as_os_str().len() + name.len() + 16 > super::address::MAX_UNIX_PATH {
        base = PathBuf::from("/tmp");
    }
    let dir = base.join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Binds a Unix socket at `path` whose file is never reachable with a mode
/// other than 0600: it is bound in a new 0700 directory beside `path`,
/// restricted, then linked into place (which fails, as `bind` would, if
/// `path` exists). Where that directory's path would be too long for a
/// socket, it is bound in place and restricted right after, as Python's
/// umask-based listener leaves it in any case.
fn bind_unix_0600(path: &Path) -> Result<UnixListener> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = parent.join(format!(".multiproc-{:016x}", sys::random::random_u64()?));
    let staged = dir.join("s");
    if staged.as_os_str().len() > super::address::MAX_UNIX_PATH {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        return Ok(listener);
    }
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let bound = UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::hard_link(&staged, path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} exists already; remove it or listen elsewhere", path.display()),
            ),
            _ => e,
        })?;
        Ok(listener)
    });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&dir);
    Ok(bound?)
}

/// Connects to a [`Listener`] (ours or Python's), like Python's
/// `multiprocessing.connection.Client`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Client;

impl Client {
    /// Connects to `address` and, with `authkey`, runs the handshake
    /// (answering the listener's challenge, then challenging it).
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] if the keys differ or the listener does not complete
    /// the handshake within [`HANDSHAKE_TIMEOUT`]; [`Error::Io`] if nothing
    /// listens there, or connecting takes longer than [`CONNECT_TIMEOUT`].
    pub fn connect<T>(address: impl IntoAddress, authkey: Option<&[u8]>) -> Result<Connection<T>> {
        Client::connect_timeout(address, authkey, HANDSHAKE_TIMEOUT)
    }

    /// Like [`connect`](Client::connect), with `timeout` for the handshake
    /// instead of [`HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// As [`connect`](Client::connect).
    pub fn connect_timeout<T>(
        address: impl IntoAddress,
        authkey: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Connection<T>> {
        let address = address.into_address()?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let (fd, local) = loop {
            match connect_once(&address) {
                Ok(connected) => break connected,
                // A full backlog: the listener is busy, not absent.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let channel = Channel::new(fd, local);
        if let Some(key) = authkey {
            channel.reader().set_max_len(MAX_HANDSHAKE_FRAME);
            auth::run(&channel, Handshake::client(key), None, Instant::now() + timeout)?;
            channel.reader().set_max_len(usize::MAX);
        }
        Ok(Connection::from_channel(channel))
    }
}

fn connect_once(address: &Address) -> io::Result<(OwnedFd, bool)> {
    Ok(match address {
        Address::Tcp(addr) => {
            let stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)?;
            stream.set_nodelay(true)?;
            (stream.into(), false)
        }
        Address::Unix(path) => (UnixStream::connect(Path::new(path))?.into(), true),
        Address::Abstract(name) => {
            (UnixStream::connect_addr(&UnixSocketAddr::from_abstract_name(name)?)?.into(), true)
        }
    })
}
