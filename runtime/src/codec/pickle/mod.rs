//! Python's pickle format, for values exchanged with Python.
//!
//! Python's `Connection.send(obj)` pickles `obj` and `recv()` unpickles, so
//! a Rust peer that speaks pickle can talk to plain Python code. This
//! module turns serde values into pickles ([`to_pickle`]) and pickles of
//! builtin Python values into serde values ([`from_pickle`]).
//!
//! Decoding never executes anything: the pickle is run by a small machine
//! that only builds builtin values. A pickle that names any other class or
//! function (`GLOBAL`, `STACK_GLOBAL`, `INST`, `OBJ`, `NEWOBJ`, `BUILD`,
//! persistent ids, the extension registry) is refused, except for the few
//! calls Python itself writes for builtin types: `_codecs.encode(str,
//! 'latin1')` (bytes in protocols 0-2), and `set`, `frozenset`, `bytearray`
//! and `bytes` of a list, str or bytes (in `builtins`, or Python 2's
//! `__builtin__`).
//!
//! # Data model
//!
//! | Python | Rust, decoding into | Rust, encoding from |
//! | --- | --- | --- |
//! | `None` | `()`, `Option::None`, a unit struct | `()`, `None`, a unit struct |
//! | `x` (not `None`) | `Some(x)` | `Some(x)` |
//! | `bool` | `bool` | `bool` |
//! | `int` (any size) | every integer type, range-checked; `f32`, `f64` | every integer type (`i128`/`u128` as `LONG1`) |
//! | `float` | `f32`, `f64` | `f32`, `f64` |
//! | `str` | `String`, `char` (one character), a unit variant | `String`, `&str`, `char`, a unit variant |
//! | `bytes`, `bytearray` | `Vec<u8>` and other sequences of `u8`; `serde_bytes` types; `String` if UTF-8 | `serialize_bytes` (`serde_bytes`) |
//! | `list`, `tuple`, `set`, `frozenset` | any sequence or tuple (`Vec`, arrays, `HashSet`, tuples); a struct, fields in order | sequences as `list`, tuples and tuple structs as `tuple` |
//! | `dict` | maps; structs (`str` keys); enum variants with a value | maps and structs as `dict` |
//! | `'Name'` / `{'Name': value}` | enum variants: a unit variant is the str of its name, any other a dict of one item (externally tagged, as in JSON) | the same |
//!
//! Both sides report `is_human_readable()`, so types with two forms (such
//! as `std::net::IpAddr`) use their text form, as a Python peer expects.
//!
//! # Caveats
//!
//! - A `Vec<u8>` encodes as a `list` of ints, as serde hands it over as a
//!   sequence; use `serde_bytes` to send Python `bytes`.
//! - Sets encode as lists, as serde does not tell them apart.
//! - An `int` decodes into a float, but a `float` never into an integer,
//!   and `True`/`False` only into `bool`.
//! - An 8-bit string of protocols 0-2 (Python 2's `str`) decodes as a `str`
//!   when it is UTF-8, else as `bytes`.
//! - `Some(())` encodes as `None`, so it decodes as `None`.
//! - An object the pickle refers to more than once (through its memo)
//!   decodes to one copy per reference; a container that contains itself
//!   is refused, as no Rust value can.
//! - A `str` holding a lone surrogate, which Rust strings cannot hold, is
//!   refused.
//! - Out-of-band buffers (protocol 5 `buffer_callback`) are refused; plain
//!   `pickle.dumps` and `Connection.send` never use them.
//!
//! # Limits
//!
//! A pickle comes from a peer that may be hostile, so decoding checks
//! every length against the input before allocating, nests containers at
//! most 256 deep, refuses decimal integers longer than Python's own limit
//! of 4300 digits, and lets shared references expand the decoded value by
//! at most 64 MiB as it counts them: 16 bytes per value plus its payload.
//! The Rust value decoded takes more than that count (a `String` or a map
//! entry is larger than 16 bytes): a 1 KB pickle that reuses its objects
//! to the limit decodes to about 1.25 million values, 89 MB in the fuzz
//! target's types. It never panics.

mod de;
mod opcode;
mod ser;
mod unpickle;
mod value;

#[cfg(test)]
mod python_tests;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The protocol Python 3.8 to 3.13 send with (`pickle.DEFAULT_PROTOCOL`),
/// readable by Python 3.4 and later.
pub(crate) const DEFAULT_PROTOCOL: u8 = 4;

/// The highest protocol there is (`pickle.HIGHEST_PROTOCOL`), Python 3.14's
/// default, readable by Python 3.8 and later.
pub(crate) const HIGHEST_PROTOCOL: u8 = unpickle::HIGHEST_PROTOCOL;

/// Encodes `value` as a pickle of `protocol`: [`DEFAULT_PROTOCOL`] (4) or
/// [`HIGHEST_PROTOCOL`] (5), or 2 or 3 for older Pythons.
///
/// # Errors
///
/// [`Error::Codec`] if `protocol` is not 2 to 5, if `value`'s `Serialize`
/// fails, or if a dict key would hold a list or dict, which Python cannot
/// hash.
pub(crate) fn to_pickle<T: Serialize + ?Sized>(value: &T, protocol: u8) -> Result<Vec<u8>> {
    if !(2..=HIGHEST_PROTOCOL).contains(&protocol) {
        return Err(Error::Codec(format!(
            "pickle protocol {protocol} cannot be written: use 2 to {HIGHEST_PROTOCOL} \
             ({DEFAULT_PROTOCOL} is what Python 3.8 to 3.13 send)"
        )));
    }
    let mut pickler = ser::Pickler::new(protocol);
    match value.serialize(&mut pickler) {
        Ok(()) => Ok(pickler.finish()),
        Err(e) => Err(Error::Codec(format!(
            "could not encode a value of type `{}` as a pickle: {e}",
            std::any::type_name::<T>()
        ))),
    }
}

/// Decodes a pickle of any protocol from 0 to 5 into a `T`, never
/// executing code: only builtin Python values are decoded (see the
/// module docs for how they map to Rust).
///
/// # Errors
///
/// [`Error::Codec`] if `bytes` is not one whole pickle, if it names a class
/// or function other than the builtin ones Python pickles with (the error
/// names it), if it exceeds a limit, or if its value does not fit a `T`
/// (the error gives the path to the part that does not).
pub(crate) fn from_pickle<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let decoded = unpickle::unpickle(bytes).and_then(|(objects, root)| {
        let walk = de::Walk::new(&objects, bytes.len());
        T::deserialize(walk.deserializer(root))
    });
    decoded.map_err(|e| {
        Error::Codec(format!("could not decode a pickle as a `{}`: {e}", std::any::type_name::<T>()))
    })
}

/// What went wrong inside the codec, and where in the value.
#[derive(Debug)]
pub(super) struct PickleError {
    message: String,
    /// Path segments (`[3]`, `.name`), innermost first.
    path: Vec<String>,
}

impl PickleError {
    fn new(message: impl Into<String>) -> Self {
        PickleError { message: message.into(), path: Vec::new() }
    }

    /// Records that the error happened inside `segment` of the value.
    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let path: String = self.path.iter().rev().map(String::as_str).collect();
        write!(f, "at `{}`: {}", path.strip_prefix('.').unwrap_or(&path), self.message)
    }
}

impl std::error::Error for PickleError {}

impl serde::ser::Error for PickleError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PickleError::new(msg.to_string())
    }
}

impl serde::de::Error for PickleError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PickleError::new(msg.to_string())
    }
}
