//! `Namespace`: named values held by the manager (Python's `Namespace`,
//! whose attributes are these names).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client;
use super::server::{Access, Caller, Served, args, no_method, ret};
use crate::codec::Encoded;
use crate::error::{Error, Result};

pub(crate) const TYPEID: &str = "namespace";

proxy!(
    /// A proxy of a set of named values of any types held by a
    /// [`Manager`](crate::Manager): Python's `manager.Namespace()`, with
    /// `ns.x = 42` written `ns.set("x", 42)` and `ns.x` written
    /// `ns.get::<u32>("x")`.
    Namespace,
    TYPEID
);

impl Namespace {
    /// Sets `name` to `value`, replacing what it held, of whatever type.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone; [`Error::Codec`] if the
    /// value does not encode.
    pub fn set<T: Serialize>(&self, name: &str, value: T) -> Result<()> {
        self.object.call("set", &(name, client::value(&value)?))
    }

    /// The value of `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] of kind `NotFound` if `name` holds nothing (Python's
    /// `AttributeError`); [`Error::Codec`] if its value is not a `T`;
    /// [`Error::Closed`] if the manager is gone.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.try_get(name)?.ok_or_else(|| Error::not_found(format!("the namespace has no `{name}`")))
    }

    /// The value of `name`, if it holds one.
    ///
    /// # Errors
    ///
    /// As [`get`](Namespace::get), but a missing name is `Ok(None)`.
    pub fn try_get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let value: Option<Encoded> = self.object.call("get", &name)?;
        value.map(client::decode).transpose()
    }

    /// Removes `name`; whether it held a value (Python's `del ns.x`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.object.call("remove", &name)
    }

    /// The names that hold values, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn names(&self) -> Result<Vec<String>> {
        self.object.call("names", &())
    }
}

/// The names and values in the server.
#[derive(Default)]
pub(crate) struct NamespaceState {
    values: BTreeMap<String, Encoded>,
}

impl Served for NamespaceState {
    fn access(&self, method: &str) -> Option<Access> {
        match method {
            "get" | "names" => Some(Access::Shared),
            "set" | "remove" => Some(Access::Exclusive),
            _ => None,
        }
    }

    fn call(&self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "get" => ret(&self.values.get(&args::<String>(a)?)),
            "names" => ret(&self.values.keys().collect::<Vec<_>>()),
            _ => Err(no_method(TYPEID, method)),
        }
    }

    fn call_mut(&mut self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "set" => {
                let (name, value): (String, Encoded) = args(a)?;
                self.values.insert(name, value);
                ret(&())
            }
            "remove" => ret(&self.values.remove(&args::<String>(a)?).is_some()),
            _ => Err(no_method(TYPEID, method)),
        }
    }
}
