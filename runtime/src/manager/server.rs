//! The manager's server: a process that holds objects and serves calls
//! on them, a thread per client connection.
//!
//! An object is a [`Served`]: it names the methods it has, says which of
//! them change it, and runs them on encoded arguments. Those that change
//! it run alone; the others run side by side (under a read lock), so a
//! method that blocks (a queue's `get`) must not change the object
//! through `&mut self`.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::protocol::{Failure, Request, Response};
use super::{dict, list, namespace, queue, sync};
use crate::codec::{self, Encoded};
use crate::connection::{Address, Client, Connection, Listener};
use crate::error::{Error, RemoteError, Result};
use crate::registry::{self, Input, Registration};

/// The name the server's loop is registered under.
pub(crate) const SERVER: &str = "multiproc::manager::server";

inventory::submit! {
    Registration { name: SERVER, file: file!(), line: line!(), invoke: run }
}

/// What the server is started with, beside the connection on which it
/// says where it listens.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerConfig {
    /// Where to listen; a fresh abstract socket if `None`.
    pub(crate) address: Option<Address>,
    pub(crate) authkey: Vec<u8>,
    /// A remote fn to run once before serving: its name and arguments.
    pub(crate) initializer: Option<(String, Encoded)>,
}

/// Why a server did not start, as it tells the process starting it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum NotStarted {
    /// It could not listen on its address: the OS error, if it was one.
    Listen { errno: Option<i32>, message: String },
    /// Its initializer failed: the fn's name, and what it said.
    Initializer { function: String, message: String, location: Option<String> },
}

/// What a server tells the process starting it: where it listens.
pub(crate) type Started = std::result::Result<Address, NotStarted>;

/// Whether a method changes its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Shared,
    Exclusive,
}

/// An object held by the server.
pub(crate) trait Served: Send + Sync {
    /// How `method` uses the object; `None` if there is no such method.
    fn access(&self, method: &str) -> Option<Access>;
    /// Runs a method whose access is [`Access::Shared`].
    fn call(&self, method: &str, args: Encoded, caller: &Caller<'_>) -> Result<Encoded>;
    /// Runs a method whose access is [`Access::Exclusive`]; objects whose
    /// methods all share it (they lock inside) have none.
    fn call_mut(&mut self, method: &str, args: Encoded, caller: &Caller<'_>) -> Result<Encoded> {
        let _ = (args, caller);
        Err(no_method("this object", method))
    }
    /// The answer `reply` of a call of `method` could not be sent: its
    /// caller is gone. A method that took something out (a queue's `get`)
    /// puts it back.
    fn reply_lost(&self, method: &str, reply: Encoded) {
        let _ = (method, reply);
    }

    /// Client process `process` has ended: what it held is free.
    fn process_gone(&self, process: u64) {
        let _ = process;
    }
}

/// The client a method runs for.
pub(crate) struct Caller<'a> {
    conn: &'a Connection<()>,
}

impl Caller<'_> {
    /// Whether the client has gone (or broken the protocol, which allows
    /// no new request before the answer): a method that waits looks now
    /// and then, and gives up for a client that will not read its answer.
    pub(crate) fn gone(&self) -> bool {
        self.conn.channel.poll(Some(Instant::now())).unwrap_or(true)
    }

    /// Waits on `changed` until `ready` gives a value for what `guard`
    /// guards (it may change it, to take what it waited for), `timeout`
    /// passes (`None`: no limit; one too long to count is none either) or
    /// the client goes. Gives the guard back however it ended, so that the
    /// caller can tidy up in the same critical section.
    pub(crate) fn wait_for<'g, T, R>(
        &self,
        mut guard: MutexGuard<'g, T>,
        changed: &Condvar,
        timeout: Option<Duration>,
        mut ready: impl FnMut(&mut T) -> Option<R>,
    ) -> (MutexGuard<'g, T>, Waited<R>) {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(value) = ready(&mut guard) {
                return (guard, Waited::Ready(value));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return (guard, Waited::TimedOut);
            }
            if self.gone() {
                return (guard, Waited::Gone);
            }
            let slice = deadline.map_or(LOOK_AGAIN, |d| (d - now).min(LOOK_AGAIN));
            guard = changed.wait_timeout(guard, slice).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// How a [`Caller::wait_for`] ended.
pub(crate) enum Waited<R> {
    Ready(R),
    TimedOut,
    /// The client went: nobody will read the answer.
    Gone,
}

/// How often a method that waits looks whether its client is gone.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// Decodes a method's arguments.
pub(crate) fn args<A: DeserializeOwned>(args: Encoded) -> Result<A> {
    codec::decode(args)
}

/// Encodes a method's result.
pub(crate) fn ret<R: Serialize + ?Sized>(value: &R) -> Result<Encoded> {
    codec::encode(value)
}

/// The error of a call of a method the object does not have.
pub(crate) fn no_method(typeid: &str, method: &str) -> Error {
    Error::invalid_input(format!("`{typeid}` has no method `{method}`"))
}

struct Object {
    typeid: String,
    state: RwLock<Box<dyn Served>>,
}

struct State {
    objects: Mutex<HashMap<u64, Arc<Object>>>,
    /// Open sessions per client process.
    sessions: Mutex<HashMap<u64, usize>>,
    /// Objects published by name, for clients that know only the address.
    names: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    address: Address,
    authkey: Vec<u8>,
}

/// The trampoline of the server: listens, says where, and serves until a
/// client asks it to stop.
fn run(input: Input) -> Result<Encoded> {
    let Input::One(args) = input else {
        return Err(Error::Codec("the manager's server is not a fn for chunks".to_owned()));
    };
    let (ready, config): (Connection<Started>, ServerConfig) = codec::decode(args)?;
    if let Some((function, args)) = config.initializer
        && let Err(panicked) = registry::run_initializer(&function, args)
    {
        let (message, location) = (panicked.message, panicked.location);
        let _ = ready.send(Err(NotStarted::Initializer { function, message, location }));
        return codec::encode(&());
    }
    let address = match config.address {
        Some(address) => address,
        None => {
            Address::Abstract(format!("multiproc-manager-{:016x}", crate::sys::random::random_u64()?).into())
        }
    };
    let listener = match Listener::bind(address, Some(&config.authkey)) {
        Ok(listener) => listener,
        Err(e) => {
            let errno = if let Error::Io(io) = &e { io.raw_os_error() } else { None };
            let _ = ready.send(Err(NotStarted::Listen { errno, message: e.to_string() }));
            return Err(e);
        }
    };
    let address = listener.address();
    log::info!("manager serving at '{address}'");
    ready.send(Ok(address.clone()))?;
    drop(ready);
    let state = Arc::new(State {
        objects: Mutex::new(HashMap::new()),
        names: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        // From a random start: a proxy of an object of an earlier server at
        // the same address and key finds no object here, not another one.
        next_id: AtomicU64::new(crate::sys::random::random_u64()? >> 1),
        stopping: AtomicBool::new(false),
        address,
        authkey: config.authkey,
    });
    while !state.stopping.load(Ordering::SeqCst) {
        match listener.accept::<()>() {
            Ok(conn) => {
                let state = Arc::clone(&state);
                let spawned = std::thread::Builder::new()
                    .name("manager-client".to_owned())
                    .spawn(move || serve(&conn, &state));
                if let Err(e) = spawned {
                    log::warn!("manager cannot serve a client: {e}");
                }
            }
            Err(Error::Auth(msg)) => log::warn!("manager turned a client away: {msg}"),
            Err(e) => {
                // Out of fds, say: the clients already served go on.
                log::warn!("manager cannot accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    log::info!("manager exiting with exitcode 0");
    codec::encode(&())
}

/// Serves one client's calls, one at a time, until it goes.
fn serve(conn: &Connection<()>, state: &State) {
    let caller = Caller { conn };
    while let Ok(encoded) = conn.channel.recv_spinning(super::protocol::spin()) {
        let (response, stop) = match codec::decode::<Request>(encoded) {
            Ok(Request::Session { process }) => return state.session(conn, process),
            Ok(Request::Shutdown) => (Handled::plain(Response::Done(Encoded::default())), true),
            Ok(request) => (state.handle(request, &caller), false),
            Err(e) => {
                let failure = Failure::Codec(format!("a request that does not decode: {e}"));
                (Handled::plain(Response::Failed(failure)), false)
            }
        };
        let frame = response.response.frame().and_then(|(bytes, fds)| {
            let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            conn.channel.send(&bytes, &fds)
        });
        let sent = match frame {
            Err(Error::Codec(e)) => {
                let failure = Response::Failed(Failure::Codec(format!("a result that does not encode: {e}")));
                failure.frame().and_then(|(bytes, _)| conn.channel.send(&bytes, &[]))
            }
            other => other,
        };
        if sent.is_err() {
            if let (Some((object, method)), Response::Done(value)) = (response.from, response.response) {
                object.state.read().unwrap_or_else(PoisonError::into_inner).reply_lost(&method, value);
            }
            return;
        }
        if stop {
            state.stop();
            return;
        }
    }
}

/// An answer, and the object and method it came from.
struct Handled {
    response: Response,
    from: Option<(Arc<Object>, String)>,
}

impl Handled {
    fn plain(response: Response) -> Handled {
        Handled { response, from: None }
    }
}

impl State {
    fn handle(&self, request: Request, caller: &Caller<'_>) -> Handled {
        let result = match request {
            Request::Create { typeid, init } => self.create(&typeid, init),
            Request::Call { id, method, args } => return self.call(id, method, args, caller),
            Request::Publish { name, id } => self.publish(name, id),
            Request::Release { id } => self.release(id),
            Request::Lookup { name } => self.lookup(&name),
            Request::Ping | Request::Shutdown | Request::Session { .. } => codec::encode(&()),
        };
        Handled::plain(match result {
            Ok(value) => Response::Done(value),
            Err(e) => Response::Failed(Failure::from_error(e)),
        })
    }

    /// Serves the session of client process `process`: answers, then waits
    /// for the connection to end, and frees what the process held.
    ///
    /// A process may open several sessions (threads that take their first
    /// lock at once): what it holds is freed when the last one ends.
    fn session(&self, conn: &Connection<()>, process: u64) {
        *self.sessions.lock().unwrap_or_else(PoisonError::into_inner).entry(process).or_default() += 1;
        if let Ok((bytes, _)) = Response::Done(Encoded::default()).frame() {
            let _ = conn.channel.send(&bytes, &[]);
        }
        // Anything sent on a session is a broken client: it ends it too.
        let _ = conn.channel.recv(None);
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let open = sessions.entry(process).or_default();
            *open = open.saturating_sub(1);
            if *open > 0 {
                return;
            }
            sessions.remove(&process);
        }
        let objects: Vec<Arc<Object>> =
            self.objects.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for object in objects {
            object.state.read().unwrap_or_else(PoisonError::into_inner).process_gone(process);
        }
    }

    fn object(&self, id: u64) -> Result<Arc<Object>> {
        let object = self.objects.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
        object.ok_or_else(|| Error::not_found(format!("this manager holds no object {id}")))
    }

    fn release(&self, id: u64) -> Result<Encoded> {
        let removed = self.objects.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.names.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, named| *named != id);
        let was = removed.is_some();
        // A user type's `Drop` may panic: the server goes on.
        if let Err(panicked) = registry::catch_panic(move || drop(removed)) {
            log::warn!("manager: dropping released object {id} panicked: {}", panicked.message);
        }
        codec::encode(&was)
    }

    fn publish(&self, name: String, id: u64) -> Result<Encoded> {
        self.object(id)?;
        self.names.lock().unwrap_or_else(PoisonError::into_inner).insert(name, id);
        codec::encode(&())
    }

    /// The id and type of the object published as `name`.
    fn lookup(&self, name: &str) -> Result<Encoded> {
        let id = self.names.lock().unwrap_or_else(PoisonError::into_inner).get(name).copied();
        let id =
            id.ok_or_else(|| Error::not_found(format!("nothing is published as `{name}` on this manager")))?;
        let object = self.object(id)?;
        codec::encode(&(id, &object.typeid))
    }

    fn create(&self, typeid: &str, init: Encoded) -> Result<Encoded> {
        // A user type's `Deserialize` runs here, and may panic.
        let state = registry::catch_panic(|| make(typeid, init)).map_err(|panicked| {
            Error::Remote(RemoteError {
                function: format!("{typeid}: making it"),
                message: panicked.message,
                pid: std::process::id(),
                location: panicked.location,
            })
        })??;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(Object { typeid: typeid.to_owned(), state: RwLock::new(state) });
        self.objects.lock().unwrap_or_else(PoisonError::into_inner).insert(id, object);
        codec::encode(&id)
    }

    fn call(&self, id: u64, method: String, args: Encoded, caller: &Caller<'_>) -> Handled {
        let object = match self.object(id) {
            Ok(object) => object,
            Err(e) => return Handled::plain(Response::Failed(Failure::from_error(e))),
        };
        let access = object.state.read().unwrap_or_else(PoisonError::into_inner).access(&method);
        let Some(access) = access else {
            return Handled::plain(Response::Failed(Failure::from_error(no_method(&object.typeid, &method))));
        };
        // A method that panics leaves the object as it was when it
        // panicked, and the server goes on serving.
        let ran = registry::catch_panic(|| match access {
            Access::Shared => {
                object.state.read().unwrap_or_else(PoisonError::into_inner).call(&method, args, caller)
            }
            Access::Exclusive => {
                object.state.write().unwrap_or_else(PoisonError::into_inner).call_mut(&method, args, caller)
            }
        });
        let response = match ran {
            Ok(Ok(value)) => Response::Done(value),
            Ok(Err(e)) => Response::Failed(Failure::from_error(e)),
            Err(panicked) => Response::Failed(Failure::Panicked {
                method: format!("{}.{method}", object.typeid),
                message: panicked.message,
                pid: std::process::id(),
                location: panicked.location,
            }),
        };
        Handled { response, from: Some((object, method)) }
    }

    /// Stops the accepting loop: sets the flag, then wakes `accept` with a
    /// connection of its own.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = Client::connect::<()>(self.address.clone(), Some(&self.authkey));
    }
}

/// Makes an object of type `typeid`.
fn make(typeid: &str, init: Encoded) -> Result<Box<dyn Served>> {
    Ok(match typeid {
        dict::TYPEID => Box::new(dict::Dict::new(args(init)?)?),
        list::TYPEID => Box::new(list::List::new(args(init)?)),
        namespace::TYPEID => Box::new(namespace::NamespaceState::default()),
        queue::TYPEID | queue::JOINABLE_TYPEID => Box::new(queue::QueueState::new(args(init)?)),
        sync::LOCK => Box::new(sync::LockState::new(false)),
        sync::RLOCK => Box::new(sync::LockState::new(true)),
        sync::SEMAPHORE => Box::new(sync::SemaphoreState::new(args(init)?)),
        sync::CONDITION => Box::new(sync::ConditionState::new()),
        sync::EVENT => Box::new(sync::EventState::new()),
        sync::BARRIER => Box::new(sync::BarrierState::new(args(init)?)?),
        sync::VALUE => Box::new(sync::ValueState::new(args(init)?)),
        sync::ARRAY => Box::new(list::List::new(args(init)?)),
        other => match super::custom::make(other, init) {
            Some(made) => made?,
            None => return Err(Error::invalid_input(format!("this manager knows no type `{other}`"))),
        },
    })
}
