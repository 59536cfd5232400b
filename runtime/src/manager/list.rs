//! `ListProxy`: a list held by the manager.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client;
use super::server::{Access, Caller, Served, args, no_method, ret};
use crate::codec::Encoded;
use crate::error::Result;

pub(crate) const TYPEID: &str = "list";

proxy!(
    /// A proxy of a list of `T` held by a [`Manager`](crate::Manager): every
    /// method is one call to the manager's server.
    ///
    /// Indexing is a slice's: an index out of range panics, in the server,
    /// which answers that call with [`Error::Remote`](crate::Error::Remote)
    /// and goes on serving.
    ///
    /// An item taken out is a copy; to share a container inside the list,
    /// push a proxy (a [`DictProxy`](crate::DictProxy), say), which stays
    /// live wherever it is read from.
    ListProxy<T>,
    TYPEID
);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `item` (Python's `append`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`](crate::Error::Closed) if the manager is gone;
    /// [`Error::Codec`](crate::Error::Codec) if the item does not encode.
    pub fn push(&self, item: T) -> Result<()> {
        self.object.call("push", &client::value(&item)?)
    }

    /// Appends every item, in one call.
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let items = items.into_iter().map(|i| client::value(&i)).collect::<Result<Vec<_>>>()?;
        self.object.call("extend", &items)
    }

    /// The item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range;
    /// otherwise as [`push`](ListProxy::push), and
    /// [`Error::Codec`](crate::Error::Codec) if the item is not a `T`.
    pub fn get(&self, index: usize) -> Result<T> {
        client::decode(self.object.call("get", &(index as u64))?)
    }

    /// Sets the item at `index`.
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn set(&self, index: usize, item: T) -> Result<()> {
        self.object.call("set", &(index as u64, client::value(&item)?))
    }

    /// Inserts `item` before `index` (at the end if `index` is the length).
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn insert(&self, index: usize, item: T) -> Result<()> {
        self.object.call("insert", &(index as u64, client::value(&item)?))
    }

    /// Removes and returns the item at `index`.
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn remove(&self, index: usize) -> Result<T> {
        client::decode(self.object.call("remove", &(index as u64))?)
    }

    /// Removes and returns the last item, if any.
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn pop(&self) -> Result<Option<T>> {
        let item: Option<Encoded> = self.object.call("pop", &())?;
        item.map(client::decode).transpose()
    }

    /// The number of items.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`](crate::Error::Closed) if the manager is gone.
    pub fn len(&self) -> Result<usize> {
        self.object.len()
    }

    /// Whether there are no items.
    ///
    /// # Errors
    ///
    /// As [`len`](ListProxy::len).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reverses the list in place, in the manager.
    ///
    /// # Errors
    ///
    /// As [`len`](ListProxy::len).
    pub fn reverse(&self) -> Result<()> {
        self.object.call("reverse", &())
    }

    /// Removes every item.
    ///
    /// # Errors
    ///
    /// As [`len`](ListProxy::len).
    pub fn clear(&self) -> Result<()> {
        self.object.call("clear", &())
    }

    /// A copy of the whole list, in one call.
    ///
    /// # Errors
    ///
    /// As [`get`](ListProxy::get).
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let items: Vec<Encoded> = self.object.call("to_vec", &())?;
        items.into_iter().map(client::decode).collect()
    }
}

/// The list in the server.
pub(crate) struct List {
    items: Vec<Encoded>,
}

impl List {
    pub(crate) fn new(items: Vec<Encoded>) -> List {
        List { items }
    }
}

/// An index from a client, as the server's `usize`: one past any list if
/// it does not fit.
fn index(i: u64) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

impl Served for List {
    fn access(&self, method: &str) -> Option<Access> {
        match method {
            "get" | "len" | "to_vec" => Some(Access::Shared),
            "push" | "extend" | "set" | "insert" | "remove" | "pop" | "reverse" | "clear" => {
                Some(Access::Exclusive)
            }
            _ => None,
        }
    }

    fn call(&self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "get" => ret(&self.items[index(args(a)?)]),
            "len" => ret(&(self.items.len() as u64)),
            "to_vec" => ret(&self.items),
            _ => Err(no_method(TYPEID, method)),
        }
    }

    fn call_mut(&mut self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "push" => {
                self.items.push(args(a)?);
                ret(&())
            }
            "extend" => {
                self.items.extend(args::<Vec<Encoded>>(a)?);
                ret(&())
            }
            "set" => {
                let (i, item): (u64, Encoded) = args(a)?;
                self.items[index(i)] = item;
                ret(&())
            }
            "insert" => {
                let (i, item): (u64, Encoded) = args(a)?;
                let i = index(i);
                assert!(
                    i <= self.items.len(),
                    "insertion index (is {i}) should be <= len (is {})",
                    self.items.len()
                );
                self.items.insert(i, item);
                ret(&())
            }
            "remove" => {
                let i = index(args(a)?);
                let len = self.items.len();
                assert!(i < len, "removal index (is {i}) should be < len (is {len})");
                ret(&self.items.remove(i))
            }
            "pop" => ret(&self.items.pop()),
            "reverse" => {
                self.items.reverse();
                ret(&())
            }
            "clear" => {
                self.items.clear();
                ret(&())
            }
            _ => Err(no_method(TYPEID, method)),
        }
    }
}
