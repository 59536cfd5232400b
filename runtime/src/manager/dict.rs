//! `DictProxy`: a map held by the manager, in insertion order, keyed by
//! the encoded bytes of its keys.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::client;
use super::protocol::comparable;
use super::server::{Access, Caller, Served, args, no_method, ret};
use crate::codec::{ByteBuf, Bytes, Encoded};
use crate::error::{Error, Result};

pub(crate) const TYPEID: &str = "dict";

proxy!(
    /// A proxy of a map held by a [`Manager`](crate::Manager), with keys `K`
    /// and values `V`: every method is one call to the manager's server, made
    /// by whichever process holds the proxy.
    ///
    /// Keys are compared by their encoded bytes, so `K` needs no `Hash` (an
    /// `f64` key works); entries keep the order they were inserted in, as a
    /// Python `dict` does.
    ///
    /// Each call is atomic, but two calls are not: `get` then `insert` from
    /// two processes at once can lose one of the updates (Python's
    /// `d[k] += 1` loses most of them, MGR-20). For read-modify-write, use
    /// [`add`](DictProxy::add), [`get_or_insert`](DictProxy::get_or_insert),
    /// [`compare_and_swap`](DictProxy::compare_and_swap) or
    /// [`update`](DictProxy::update), which are.
    ///
    /// A value taken out of the dict is a copy: changing it changes nothing
    /// in the manager until it is inserted again. To share a container inside
    /// a container, insert a proxy (a `DictProxy` in a `ListProxy`, say): it
    /// stays live wherever it is read from.
    DictProxy<K, V>,
    TYPEID
);

/// Numbers that [`DictProxy::add`] adds in the manager.
pub trait Number: sealed::Sealed + Serialize + DeserializeOwned + Copy {}

mod sealed {
    pub trait Sealed {
        const KIND: super::NumberKind;
        /// `None` on overflow.
        fn plus(self, other: Self) -> Option<Self>
        where
            Self: Sized;
    }
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum NumberKind {
    I8,
    I16,
    I32,
    I64,
    I128,
    Isize,
    U8,
    U16,
    U32,
    U64,
    U128,
    Usize,
    F32,
    F64,
}

macro_rules! numbers {
    ($($int:ident $kind:ident),* ; $($float:ident $fkind:ident),*) => {
        $(
            impl sealed::Sealed for $int {
                const KIND: NumberKind = NumberKind::$kind;
                fn plus(self, other: Self) -> Option<Self> {
                    self.checked_add(other)
                }
            }
            impl Number for $int {}
        )*
        $(
            impl sealed::Sealed for $float {
                const KIND: NumberKind = NumberKind::$fkind;
                fn plus(self, other: Self) -> Option<Self> {
                    Some(self + other)
                }
            }
            impl Number for $float {}
        )*

        /// Adds `delta` to `stored` (zero if absent) as numbers of `kind`.
        pub(crate) fn add_as(kind: NumberKind, stored: Option<&Encoded>, delta: Encoded) -> Result<Encoded> {
            match kind {
                $(NumberKind::$kind => add_typed::<$int>(stored, delta),)*
                $(NumberKind::$fkind => add_typed::<$float>(stored, delta),)*
            }
        }
    };
}

numbers!(i8 I8, i16 I16, i32 I32, i64 I64, i128 I128, isize Isize,
         u8 U8, u16 U16, u32 U32, u64 U64, u128 U128, usize Usize; f32 F32, f64 F64);

fn add_typed<N: Number + Default + fmt::Display>(
    stored: Option<&Encoded>,
    delta: Encoded,
) -> Result<Encoded> {
    let delta: N = crate::codec::decode(delta)?;
    let current: N = match stored {
        Some(stored) => crate::codec::decode_slice(&stored.bytes, Vec::new()).map_err(|_| {
            Error::invalid_input(format!("the value is not a `{}`", std::any::type_name::<N>()))
        })?,
        None => N::default(),
    };
    let sum = current.plus(delta).ok_or_else(|| {
        Error::invalid_input(format!("{current} + {delta} overflows `{}`", std::any::type_name::<N>()))
    })?;
    crate::codec::encode(&sum)
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Sets `key` to `value`; returns the value it had.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone; [`Error::Codec`] if the
    /// key or value does not encode, or the old value does not decode as a
    /// `V`; [`Error::Io`] if the key holds handles.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        let old: Option<Encoded> =
            self.object.call("insert", &(client::key(&key)?, client::value(&value)?))?;
        old.map(client::decode).transpose()
    }

    /// The value of `key`, if it has one.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let value: Option<Encoded> = self.object.call("get", &client::key(key)?)?;
        value.map(client::decode).transpose()
    }

    /// Removes `key`; returns the value it had.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let old: Option<Encoded> = self.object.call("remove", &client::key(key)?)?;
        old.map(client::decode).transpose()
    }

    /// Whether `key` has a value.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.object.call("contains", &client::key(key)?)
    }

    /// The number of entries.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn len(&self) -> Result<usize> {
        self.object.len()
    }

    /// Whether there are no entries.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn keys(&self) -> Result<Vec<K>> {
        let keys: Vec<ByteBuf> = self.object.call("keys", &())?;
        keys.into_iter().map(|ByteBuf(k)| client::decode(Encoded::from_bytes(k))).collect()
    }

    /// The values, in insertion order of their keys.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn values(&self) -> Result<Vec<V>> {
        let values: Vec<Encoded> = self.object.call("values", &())?;
        values.into_iter().map(client::decode).collect()
    }

    /// The entries, in insertion order: one consistent copy.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let items: Vec<(ByteBuf, Encoded)> = self.object.call("items", &())?;
        items
            .into_iter()
            .map(|(ByteBuf(k), v)| Ok((client::decode(Encoded::from_bytes(k))?, client::decode(v)?)))
            .collect()
    }

    /// A copy of the whole map.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn to_hashmap(&self) -> Result<HashMap<K, V>>
    where
        K: Hash + Eq,
    {
        Ok(self.items()?.into_iter().collect())
    }

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the manager is gone.
    pub fn clear(&self) -> Result<()> {
        self.object.call("clear", &())
    }

    /// Removes and returns the entry inserted last (Python's `popitem`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn pop_item(&self) -> Result<Option<(K, V)>> {
        let item: Option<(ByteBuf, Encoded)> = self.object.call("pop_item", &())?;
        item.map(|(ByteBuf(k), v)| Ok((client::decode(Encoded::from_bytes(k))?, client::decode(v)?)))
            .transpose()
    }

    /// The value of `key`, inserting `default` first if it has none: one
    /// atomic step (Python's `setdefault`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn get_or_insert(&self, key: K, default: V) -> Result<V> {
        let value: Encoded =
            self.object.call("get_or_insert", &(client::key(&key)?, client::value(&default)?))?;
        client::decode(value)
    }

    /// Adds `delta` to the number at `key` (zero if there is none) in one
    /// atomic step, and returns the sum: a counter that any number of
    /// processes can increment without losing counts.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the value there is not a `V` or the sum overflows
    /// (the value stays as it was); otherwise as
    /// [`insert`](DictProxy::insert).
    pub fn add(&self, key: &K, delta: V) -> Result<V>
    where
        V: Number,
    {
        let sum: Encoded = self.object.call("add", &(client::key(key)?, V::KIND, client::value(&delta)?))?;
        client::decode(sum)
    }

    /// Sets `key` to `new` (`None`: removes it) if its value is still
    /// `current` (`None`: absent), compared as encoded bytes. `Ok(Ok(()))`
    /// if it was; `Ok(Err(actual))` with the value it has if not.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn compare_and_swap(
        &self,
        key: &K,
        current: Option<&V>,
        new: Option<V>,
    ) -> Result<std::result::Result<(), Option<V>>> {
        let current = current.map(client::value).transpose()?;
        match self.swap(key, current.as_ref().map(comparable).transpose()?, new.as_ref())? {
            Ok(()) => Ok(Ok(())),
            Err(actual) => Ok(Err(actual.map(client::decode).transpose()?)),
        }
    }

    /// Replaces the value of `key` with `f(value)` (`None`: absent, or
    /// remove) atomically, however many processes update it at once:
    /// `f` runs here, and runs again if another update came in between.
    /// Returns the value set.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    pub fn update(&self, key: &K, mut f: impl FnMut(Option<V>) -> Option<V>) -> Result<Option<V>> {
        let mut current: Option<Encoded> = self.object.call("get", &client::key(key)?)?;
        loop {
            // The bytes compared are those the manager sent, not the value
            // encoded again here, which need not give the same bytes.
            let bytes = current.as_ref().map(|c| c.bytes.clone());
            let new = f(current.map(client::decode).transpose()?);
            match self.swap(key, bytes.as_deref(), new.as_ref())? {
                Ok(()) => return Ok(new),
                Err(actual) => current = actual,
            }
        }
    }

    fn swap(
        &self,
        key: &K,
        current: Option<&[u8]>,
        new: Option<&V>,
    ) -> Result<std::result::Result<(), Option<Encoded>>> {
        let new = new.map(client::value).transpose()?;
        self.object.call("compare_and_swap", &(client::key(key)?, current.map(Bytes), new))
    }
}

/// The map in the server: entries in insertion order (with holes where
/// entries were removed, squeezed out when they are half), and an index
/// from key bytes to entry.
pub(crate) struct Dict {
    entries: Vec<Option<(Vec<u8>, Encoded)>>,
    index: HashMap<Vec<u8>, usize>,
}

impl Dict {
    pub(crate) fn new((): ()) -> Result<Dict> {
        Ok(Dict { entries: Vec::new(), index: HashMap::new() })
    }

    fn get(&self, key: &[u8]) -> Option<&Encoded> {
        self.index.get(key).and_then(|&i| self.entries[i].as_ref()).map(|(_, v)| v)
    }

    fn insert(&mut self, key: Vec<u8>, value: Encoded) -> Option<Encoded> {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].as_mut().map(|(_, v)| std::mem::replace(v, value)),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push(Some((key, value)));
                None
            }
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Encoded> {
        let i = self.index.remove(key)?;
        let (_, value) = self.entries[i].take()?;
        if self.index.len() * 2 < self.entries.len() {
            self.entries.retain(Option::is_some);
            for (i, (k, _)) in self.entries.iter().flatten().enumerate() {
                self.index.insert(k.clone(), i);
            }
        }
        Some(value)
    }

    fn live(&self) -> impl Iterator<Item = &(Vec<u8>, Encoded)> {
        self.entries.iter().flatten()
    }
}

fn key_bytes(key: Encoded) -> Result<Vec<u8>> {
    client::check_key(&key)?;
    Ok(key.bytes)
}

impl Served for Dict {
    fn access(&self, method: &str) -> Option<Access> {
        match method {
            "get" | "contains" | "len" | "keys" | "values" | "items" => Some(Access::Shared),
            "insert" | "remove" | "clear" | "pop_item" | "get_or_insert" | "add" | "compare_and_swap" => {
                Some(Access::Exclusive)
            }
            _ => None,
        }
    }

    fn call(&self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "get" => ret(&self.get(&key_bytes(args(a)?)?)),
            "contains" => ret(&self.get(&key_bytes(args(a)?)?).is_some()),
            "len" => ret(&(self.index.len() as u64)),
            "keys" => ret(&self.live().map(|(k, _)| Bytes(k)).collect::<Vec<_>>()),
            "values" => ret(&self.live().map(|(_, v)| v).collect::<Vec<_>>()),
            "items" => ret(&self.live().map(|(k, v)| (Bytes(k), v)).collect::<Vec<_>>()),
            _ => Err(no_method(TYPEID, method)),
        }
    }

    fn call_mut(&mut self, method: &str, a: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        match method {
            "insert" => {
                let (key, value): (Encoded, Encoded) = args(a)?;
                ret(&self.insert(key_bytes(key)?, value))
            }
            "remove" => {
                let key = key_bytes(args(a)?)?;
                ret(&self.remove(&key))
            }
            "clear" => {
                *self = Dict::new(())?;
                ret(&())
            }
            "pop_item" => {
                let last = self.entries.iter().rev().flatten().next().map(|(k, _)| k.clone());
                let item = last.and_then(|k| self.remove(&k).map(|v| (ByteBuf(k), v)));
                ret(&item.as_ref().map(|(ByteBuf(k), v)| (Bytes(k), v)))
            }
            "get_or_insert" => {
                let (key, default): (Encoded, Encoded) = args(a)?;
                let key = key_bytes(key)?;
                if self.get(&key).is_none() {
                    self.insert(key.clone(), default);
                }
                ret(self.get(&key).expect("inserted if absent"))
            }
            "add" => {
                let (key, kind, delta): (Encoded, NumberKind, Encoded) = args(a)?;
                let key = key_bytes(key)?;
                let sum = add_as(kind, self.get(&key), delta)?;
                let reply = ret(&sum);
                self.insert(key, sum);
                reply
            }
            "compare_and_swap" => {
                let (key, expected, new): (Encoded, Option<ByteBuf>, Option<Encoded>) = args(a)?;
                let key = key_bytes(key)?;
                let actual = self.get(&key);
                if actual.map(comparable).transpose()? != expected.as_ref().map(|ByteBuf(b)| &b[..]) {
                    return ret(&Err::<(), _>(actual));
                }
                match new {
                    Some(value) => drop(self.insert(key, value)),
                    None => drop(self.remove(&key)),
                }
                ret(&Ok::<(), Option<&Encoded>>(()))
            }
            _ => Err(no_method(TYPEID, method)),
        }
    }
}
