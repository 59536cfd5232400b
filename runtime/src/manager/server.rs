//! The manager's server: a process that holds objects and serves calls
//! on them, a thread per client connection.
//!
//! An object is a [`Served`]: it names the methods it has, says which of
//! them change it, and runs them on encoded arguments. Those that change
//! it run alone; the others run side by side (under a read lock), so a
//! method that blocks (a queue's `get`) must not change the object
//! through `&mut self`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::protocol::{Failure, Request, Response};
use super::{dict, list, namespace};
use crate::codec::{self, Encoded};
use crate::connection::{Address, Client, Connection, Listener};
use crate::error::{Error, Result};
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
}

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
    fn call(&self, method: &str, args: Encoded) -> Result<Encoded>;
    /// Runs a method whose access is [`Access::Exclusive`].
    fn call_mut(&mut self, method: &str, args: Encoded) -> Result<Encoded>;
}

/// Decodes a method's arguments.
pub(crate) fn args<A: DeserializeOwned>(args: Encoded) -> Result<A> {
    codec::decode(args)
}

/// Encodes a method's result.
pub(crate) fn ret<R: Serialize + ?Sized>(value: &R) -> Result<Encoded> {
    codec::encode(value)
}

/// The error of a method name that [`Served::access`] accepted but the
/// object does not run that way: a bug in the object, reported as such.
pub(crate) fn no_method(typeid: &str, method: &str) -> Error {
    Error::invalid_input(format!("`{typeid}` has no method `{method}`"))
}

struct Object {
    typeid: String,
    state: RwLock<Box<dyn Served>>,
}

struct State {
    objects: Mutex<HashMap<u64, Arc<Object>>>,
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
    let (ready, config): (Connection<std::result::Result<Address, String>>, ServerConfig) =
        codec::decode(args)?;
    let address = match config.address {
        Some(address) => address,
        None => {
            Address::Abstract(format!("multiproc-manager-{:016x}", crate::sys::random::random_u64()?).into())
        }
    };
    let listener = match Listener::bind(address, Some(&config.authkey)) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return Err(e);
        }
    };
    let address = listener.address();
    log::info!("manager serving at '{address}'");
    ready.send(Ok(address.clone()))?;
    drop(ready);
    let state = Arc::new(State {
        objects: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
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
    while let Ok(encoded) = conn.channel.recv_spinning(super::client::spin()) {
        let (response, stop) = match codec::decode::<Request>(encoded) {
            Ok(Request::Shutdown) => (Response::Done(Encoded::default()), true),
            Ok(request) => (state.handle(request), false),
            Err(e) => {
                (Response::Failed(Failure::Codec(format!("a request that does not decode: {e}"))), false)
            }
        };
        let encoded = codec::encode(&response).or_else(|e| {
            codec::encode(&Response::Failed(Failure::Codec(format!("a result that does not encode: {e}"))))
        });
        let Ok(encoded) = encoded else { return };
        let fds: Vec<_> = encoded.fds.iter().map(std::os::fd::AsFd::as_fd).collect();
        if conn.channel.send(&encoded.bytes, &fds).is_err() {
            return;
        }
        if stop {
            state.stop();
            return;
        }
    }
}

impl State {
    fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::Create { typeid, init } => self.create(&typeid, init),
            Request::Call { id, method, args } => return self.call(id, &method, args),
            Request::Ping | Request::Shutdown => codec::encode(&()),
        };
        match result {
            Ok(value) => Response::Done(value),
            Err(e) => Response::Failed(Failure::from_error(e)),
        }
    }

    fn create(&self, typeid: &str, init: Encoded) -> Result<Encoded> {
        let state = make(typeid, init)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(Object { typeid: typeid.to_owned(), state: RwLock::new(state) });
        self.objects.lock().unwrap_or_else(PoisonError::into_inner).insert(id, object);
        codec::encode(&id)
    }

    fn call(&self, id: u64, method: &str, args: Encoded) -> Response {
        let object = self.objects.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
        let Some(object) = object else {
            return Response::Failed(Failure::Invalid(format!("this manager holds no object {id}")));
        };
        let access = object.state.read().unwrap_or_else(PoisonError::into_inner).access(method);
        let Some(access) = access else {
            return Response::Failed(Failure::Invalid(format!(
                "`{}` has no method `{method}`",
                object.typeid
            )));
        };
        // A method that panics leaves the object as it was when it
        // panicked, and the server goes on serving.
        let ran = registry::catch_panic(|| match access {
            Access::Shared => object.state.read().unwrap_or_else(PoisonError::into_inner).call(method, args),
            Access::Exclusive => {
                object.state.write().unwrap_or_else(PoisonError::into_inner).call_mut(method, args)
            }
        });
        match ran {
            Ok(Ok(value)) => Response::Done(value),
            Ok(Err(e)) => Response::Failed(Failure::from_error(e)),
            Err(panicked) => Response::Failed(Failure::Panicked {
                method: format!("{}.{method}", object.typeid),
                message: panicked.message,
                pid: std::process::id(),
                location: panicked.location,
            }),
        }
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
        other => return Err(Error::invalid_input(format!("this manager knows no type `{other}`"))),
    })
}
