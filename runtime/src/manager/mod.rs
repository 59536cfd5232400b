//! Managers: a server process that holds shared objects, and typed proxies
//! that call it from any process (Python's `multiprocessing.Manager`).
//!
//! A proxy is where its object lives (the server's address and key) and
//! the object's number there; it holds no fd, so it can go anywhere a
//! value can: into a child, through a pipe or a queue, and into another
//! managed object, where it stays live. Each process keeps its own
//! connections to the servers it calls, one per call under way, reused.

/// A proxy type: its struct (an object's place, and the types of what it
/// holds), `Clone`, `Debug`, serde (as the place), and [`Proxy`].
macro_rules! proxy {
    ($(#[$doc:meta])* $name:ident $(<$($t:ident),+>)?, $typeid:expr) => {
        $(#[$doc])*
        pub struct $name $(<$($t),+>)? {
            object: $crate::manager::client::ObjectRef,
            _types: ::std::marker::PhantomData<fn() -> ($($($t,)+)?)>,
        }

        impl $(<$($t),+>)? $crate::manager::sealed::Sealed for $name $(<$($t),+>)? {
            const TYPEID: &'static str = $typeid;

            fn object(&self) -> &$crate::manager::client::ObjectRef {
                &self.object
            }

            fn from_object(object: $crate::manager::client::ObjectRef) -> Self {
                $name { object, _types: ::std::marker::PhantomData }
            }
        }

        impl $(<$($t),+>)? $crate::manager::Proxy for $name $(<$($t),+>)? {}

        impl $(<$($t),+>)? ::std::clone::Clone for $name $(<$($t),+>)? {
            fn clone(&self) -> Self {
                $name { object: self.object.clone(), _types: ::std::marker::PhantomData }
            }
        }

        impl $(<$($t),+>)? ::std::fmt::Debug for $name $(<$($t),+>)? {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.object).finish()
            }
        }

        impl $(<$($t),+>)? ::serde::Serialize for $name $(<$($t),+>)? {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                ::serde::Serialize::serialize(&self.object, serializer)
            }
        }

        impl<'de $($(, $t)+)?> ::serde::Deserialize<'de> for $name $(<$($t),+>)? {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let object = <$crate::manager::client::ObjectRef as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok($name { object, _types: ::std::marker::PhantomData })
            }
        }
    };
}

mod client;
mod custom;
mod dict;
mod list;
mod namespace;
mod protocol;
mod queue;
mod server;
mod sync;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use custom::Managed;
pub use dict::{DictProxy, Number};

/// What the code `#[managed]` generates uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::client::ObjectRef;
    pub use super::custom::{
        ManagedArg, ManagedObject, ManagedReturn, ManagedType, ManagedValue, call_method, call_proxy,
        make_managed, unknown_method,
    };
    pub use super::sealed::Sealed as ProxySeal;
}
pub use list::ListProxy;
pub use namespace::Namespace;
pub use queue::{JoinableQueueProxy, QueueProxy};
pub use sync::{
    ArrayProxy, BarrierProxy, ConditionProxy, EventProxy, LockProxy, ProxyLockGuard, RLockProxy,
    SemaphoreProxy, ValueProxy,
};

pub(crate) mod sealed {
    /// What every proxy is: an object's place, and its type's name.
    pub trait Sealed: Sized {
        /// The name of the kind of object, as the server knows it.
        const TYPEID: &'static str;
        /// Where the object is.
        fn object(&self) -> &super::client::ObjectRef;
        /// The proxy of the object at `object`.
        fn from_object(object: super::client::ObjectRef) -> Self;
    }
}

/// The proxies of objects a [`Manager`] holds: [`DictProxy`],
/// [`ListProxy`], [`Namespace`], [`QueueProxy`], [`JoinableQueueProxy`],
/// [`LockProxy`], [`RLockProxy`], [`SemaphoreProxy`], [`ConditionProxy`],
/// [`EventProxy`], [`BarrierProxy`], [`ValueProxy`] and [`ArrayProxy`].
/// Any of them can be [published](Manager::publish) by name and
/// [looked up](Manager::lookup) by processes that know only the manager's
/// address and key.
pub trait Proxy: sealed::Sealed {}

use client::{ObjectRef, Server};
use protocol::Request;
use server::{NotStarted, SERVER, ServerConfig, Started};

use crate::codec;
use crate::connection::{Address, IntoAddress};
use crate::error::{Error, Result};
use crate::process::{Process, ProcessBuilder};
use crate::start::StartMethod;

/// How long [`Manager::shutdown`] waits for the server to exit before it
/// terminates it (Python's `shutdown_timeout`).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`Manager::start`] waits for the server to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process holding shared objects (Python's `SyncManager`): make
/// objects with [`dict`](Manager::dict), [`list`](Manager::list) and
/// [`namespace`](Manager::namespace), and use their proxies from any
/// process.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// let manager = multiproc::Manager::start()?;
/// let d = manager.dict::<String, i64>()?;
/// d.insert("a".to_owned(), 1)?;
/// assert_eq!(d.get(&"a".to_owned())?, Some(1));
/// manager.shutdown()?;
/// # Ok(())
/// # }
/// ```
///
/// The server stops at [`shutdown`](Manager::shutdown), when the `Manager`
/// that started it is dropped, or with the process that started it. Its
/// objects live as long as it does, unless [released](Manager::release).
/// A proxy whose server is gone returns [`Error::Closed`] from every call,
/// at once.
pub struct Manager {
    server: Server,
    /// The server process, if this `Manager` started it.
    process: Mutex<Option<Process<()>>>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.server.address)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// Options for a [`Manager`]'s server: where it listens, with which key,
/// started how.
#[derive(Default)]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    start_method: Option<StartMethod>,
    initializer: Option<(&'static str, Result<crate::codec::Encoded>)>,
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("start_method", &self.start_method)
            .field("initializer", &self.initializer.as_ref().map(|(name, _)| name))
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// Listens on `address` (`"127.0.0.1:0"` for TCP on a free port, a
    /// path, or `@name`) instead of a fresh abstract Unix socket. Over TCP,
    /// values that hold handles (queues, locks, connections) cannot be
    /// stored: they are fds, which only a Unix socket carries.
    pub fn address(mut self, address: impl IntoAddress) -> Result<Self> {
        self.address = Some(address.into_address()?);
        Ok(self)
    }

    /// The key clients must prove they have (a random 32-byte key by
    /// default, which proxies carry with them).
    pub fn authkey(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// Starts the server with `method` instead of the default.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Runs `f(args)` once in the server process, before it serves
    /// (Python's `start(initializer, initargs)`). If it panics,
    /// [`start`](ManagerBuilder::start) fails with that panic as
    /// [`Error::Remote`].
    pub fn initializer<F: crate::Remote>(mut self, f: F, args: F::Args) -> Self {
        let _ = f;
        self.initializer = Some((F::NAME, codec::encode(&args)));
        self
    }

    /// Starts the server and waits until it listens.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the address cannot be listened on (in use, say);
    /// [`Error::Remote`] if the initializer panicked;
    /// [`Error::Timeout`] if it did not listen within 30 s; [`Error::ProcessDied`]
    /// if the server died before it listened; the
    /// errors of [`spawn`](crate::spawn).
    pub fn start(self) -> Result<Manager> {
        let authkey = match self.authkey {
            Some(key) => key,
            None => {
                let mut key = vec![0u8; 32];
                crate::sys::random::fill(&mut key)?;
                key
            }
        };
        let initializer = match self.initializer {
            Some((name, args)) => Some((name.to_owned(), args?)),
            None => None,
        };
        let (ready, theirs) = crate::connection::pipe::<Started>()?;
        let config = ServerConfig { address: self.address, authkey: authkey.clone(), initializer };
        let args = codec::encode(&(&theirs, config))?;
        drop(theirs);
        let mut builder = ProcessBuilder::default().name(next_name()).daemon(true);
        if let Some(method) = self.start_method {
            builder = builder.start_method(method);
        }
        let mut process = builder.spawn_target::<()>(SERVER, args)?;
        let answer = if ready.poll(START_TIMEOUT)? { ready.recv() } else { Err(Error::Timeout) };
        let address = match answer {
            Ok(Ok(address)) => address,
            Ok(Err(why)) => {
                let pid = process.pid();
                let _ = process.join();
                return Err(match why {
                    NotStarted::Listen { errno, message } => {
                        let kind = errno.map_or(std::io::ErrorKind::InvalidInput, |n| {
                            std::io::Error::from_raw_os_error(n).kind()
                        });
                        Error::Io(std::io::Error::new(kind, format!("the manager cannot listen: {message}")))
                    }
                    NotStarted::Initializer { function, message, location } => {
                        Error::Remote(crate::error::RemoteError { function, message, pid, location })
                    }
                });
            }
            Err(e) => {
                // No answer in time, or the server died first.
                let _ = process.kill();
                return Err(match (e, process.join()) {
                    (Error::Timeout, _) => Error::Timeout,
                    (_, Err(died @ Error::ProcessDied { .. })) => died,
                    (e, _) => e,
                });
            }
        };
        Ok(Manager { server: Server { address, authkey: Some(authkey) }, process: Mutex::new(Some(process)) })
    }
}

/// `SyncManager-1`, `SyncManager-2`, ...: Python's names for the servers.
fn next_name() -> String {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    format!("SyncManager-{n}")
}

impl Manager {
    /// Starts a manager's server in a new process, listening on a fresh
    /// abstract Unix socket with a random key.
    ///
    /// # Errors
    ///
    /// As [`ManagerBuilder::start`].
    pub fn start() -> Result<Manager> {
        ManagerBuilder::default().start()
    }

    /// Options for the server: its address, key and start method.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the server of a manager started elsewhere, by its
    /// address and key. Dropping this `Manager` leaves the server running.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] if the key is wrong; [`Error::Closed`] if nothing
    /// listens there.
    pub fn connect(address: impl IntoAddress, authkey: &[u8]) -> Result<Manager> {
        let server = Server { address: address.into_address()?, authkey: Some(authkey.to_vec()) };
        server.request::<()>(&Request::Ping)?;
        Ok(Manager { server, process: Mutex::new(None) })
    }

    /// Where the server listens.
    pub fn address(&self) -> &Address {
        &self.server.address
    }

    /// The server's pid, if this `Manager` started it and it has not been
    /// shut down.
    pub fn pid(&self) -> Option<u32> {
        self.lock_process().as_ref().map(Process::pid)
    }

    fn lock_process(&self) -> std::sync::MutexGuard<'_, Option<Process<()>>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new, empty map in the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.make(&())
    }

    /// A new, empty list in the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>> {
        self.list_from(std::iter::empty())
    }

    /// A new list in the manager holding `items` (Python's
    /// `manager.list(range(10))`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone; [`Error::Codec`] if an item
    /// does not encode.
    pub fn list_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ListProxy<T>> {
        let items = items.into_iter().map(|i| client::value(&i)).collect::<Result<Vec<_>>>()?;
        self.make(&items)
    }

    /// A new, empty namespace in the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn namespace(&self) -> Result<Namespace> {
        self.make(&())
    }

    /// A new, unbounded queue in the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.make(&(0u64, false))
    }

    /// A new queue in the manager that holds at most `maxsize` items.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `maxsize` is 0; [`Error::Closed`] if the server is
    /// gone.
    pub fn bounded_queue<T: Serialize + DeserializeOwned>(&self, maxsize: usize) -> Result<QueueProxy<T>> {
        if maxsize == 0 {
            return Err(Error::invalid_input("a bounded queue holds at least one item"));
        }
        self.make(&(maxsize as u64, false))
    }

    /// A new, unbounded queue in the manager that counts unfinished tasks.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn joinable_queue<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueueProxy<T>> {
        self.make(&(0u64, true))
    }

    /// A new lock in the manager, free.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn lock(&self) -> Result<LockProxy> {
        self.make(&())
    }

    /// A new reentrant lock in the manager, free.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn rlock(&self) -> Result<RLockProxy> {
        self.make(&())
    }

    /// A new semaphore in the manager with `value` units.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.make(&(value, false))
    }

    /// A new semaphore in the manager with `value` units, which a release
    /// may not take over `value` (Python's `BoundedSemaphore`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.make(&(value, true))
    }

    /// A new condition variable in the manager, with its own lock.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn condition(&self) -> Result<ConditionProxy> {
        self.make(&())
    }

    /// A new event in the manager, not set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone.
    pub fn event(&self) -> Result<EventProxy> {
        self.make(&())
    }

    /// A new barrier in the manager for `parties` parties.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `parties` is 0; [`Error::Closed`] if the server is
    /// gone.
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy> {
        self.make(&(parties as u64))
    }

    /// A new value in the manager.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone; [`Error::Codec`] if the
    /// value does not encode.
    pub fn value<T: Serialize + DeserializeOwned>(&self, value: T) -> Result<ValueProxy<T>> {
        self.make(&client::value(&value)?)
    }

    /// A new array in the manager holding `items`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone; [`Error::Codec`] if an item
    /// does not encode.
    pub fn array<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ArrayProxy<T>> {
        let items = items.into_iter().map(|i| client::value(&i)).collect::<Result<Vec<_>>>()?;
        self.make(&items)
    }

    /// Hands `value` to the manager, which holds it from then on, and
    /// returns its proxy: the type's methods, called in the manager for
    /// any process that has the proxy. See [`Managed`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the server is gone; [`Error::Codec`] if the
    /// value does not encode.
    pub fn create<T: Managed>(&self, value: T) -> Result<T::Proxy> {
        Ok(<T::Proxy as sealed::Sealed>::from_object(ObjectRef::create(&self.server, T::TYPEID, &value)?))
    }

    fn make<P: Proxy, I: Serialize>(&self, init: &I) -> Result<P> {
        Ok(P::from_object(ObjectRef::create(&self.server, P::TYPEID, init)?))
    }

    /// Publishes the object of `proxy` as `name` on its server, so that a
    /// process that knows only the server's address and key can
    /// [`lookup`](Manager::lookup) it. A name published again names the
    /// new object.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the object is held by another manager;
    /// [`Error::Closed`] if the server is gone.
    pub fn publish<P: Proxy>(&self, name: &str, proxy: &P) -> Result<()> {
        let object = self.mine(proxy)?;
        let request = Request::Publish { name: name.to_owned(), id: object.id };
        self.server.request(&request)
    }

    /// Frees the object of `proxy` in the manager now, with the names it
    /// was published under; whether it was there. Every proxy of it gets
    /// an error from then on ([`Error::Io`]: no such object). A call under
    /// way on it ends as it would have.
    ///
    /// The manager frees nothing else before it stops: a manager that
    /// serves for long and makes objects without end should release those
    /// it is done with.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the object is held by another manager;
    /// [`Error::Closed`] if the server is gone.
    pub fn release<P: Proxy>(&self, proxy: &P) -> Result<bool> {
        let object = self.mine(proxy)?;
        self.server.request(&Request::Release { id: object.id })
    }

    /// The object of `proxy`, which must be held by this manager.
    fn mine<'p, P: Proxy>(&self, proxy: &'p P) -> Result<&'p ObjectRef> {
        let object = proxy.object();
        if object.server.address != self.server.address {
            return Err(Error::invalid_input("the object is held by another manager"));
        }
        Ok(object)
    }

    /// A proxy of the object published as `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] of kind `NotFound` if nothing is published as `name`,
    /// of kind `InvalidInput` if the object is not of `P`'s kind;
    /// [`Error::Closed`] if the server is gone.
    pub fn lookup<P: Proxy>(&self, name: &str) -> Result<P> {
        let (id, typeid): (u64, String) = self.server.request(&Request::Lookup { name: name.to_owned() })?;
        if typeid != P::TYPEID {
            return Err(Error::invalid_input(format!("`{name}` is a `{typeid}`, not a `{}`", P::TYPEID)));
        }
        Ok(P::from_object(ObjectRef { server: self.server.clone(), id }))
    }

    /// Stops the server: asks it to exit, waits [`SHUTDOWN_TIMEOUT`], then
    /// terminates it. Proxies of its objects return [`Error::Closed`] from
    /// then on. Does nothing the second time, or on a `Manager` made by
    /// [`connect`](Manager::connect).
    ///
    /// # Errors
    ///
    /// [`Error::ProcessDied`] if the server had died, or had to be
    /// terminated.
    pub fn shutdown(&self) -> Result<()> {
        let Some(mut process) = self.lock_process().take() else { return Ok(()) };
        log::info!("sending shutdown message to manager");
        let _ = self.server.request::<()>(&Request::Shutdown);
        self.server.forget();
        if !process.wait_timeout(SHUTDOWN_TIMEOUT)? {
            log::info!("manager still alive after shutdown: terminating it");
            process.terminate()?;
            if !process.wait_timeout(SHUTDOWN_TIMEOUT)? {
                process.kill()?;
            }
        }
        process.join()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
