//! The one codec (serde values as postcard bytes) and the one frame format
//! (CPython's `multiprocessing.connection` length prefix). Nothing else in
//! the crate turns values into bytes.
//!
//! Values may hold handles backed by file descriptors (a `Connection`, later
//! a `Queue` or a `Lock`). Encoding such a value writes an index into a side
//! table of fds; the fds travel beside the bytes (SCM_RIGHTS) and decoding
//! rebuilds the handle from the fd at that index. [`serialize_fd`] and
//! [`deserialize_fd`] are the two ends of that table.

mod frame;
#[cfg(feature = "pickle")]
pub(crate) mod pickle;

pub(crate) use frame::{FrameReader, FrameTooLong, IntoOutcome, ReadOutcome, write_frame, write_frames};

use std::cell::RefCell;
use std::os::fd::{BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An encoded value: its bytes and the fds of the handles inside it.
#[derive(Debug, Default)]
pub struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl Encoded {
    /// Wraps bytes that carry no handles.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        Encoded { bytes, fds: Vec::new() }
    }
}

thread_local! {
    /// fds collected while encoding, in index order; `None` outside `encode`.
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// fds available while decoding, taken by index; `None` outside `decode`.
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Encodes `value`, collecting a duplicate of every fd its handles hold.
///
/// Late in a thread's life (in an `atexit` handler, after libc has run the
/// thread-local destructors) there is no side table: plain values still
/// encode, and a handle is refused as it is outside `encode`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded> {
    encode_into(value, Vec::new())
}

/// [`encode`] into `buf`, whose contents are replaced: a caller that keeps
/// one buffer makes no allocation per value.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, mut buf: Vec<u8>) -> Result<Encoded> {
    forget_custom();
    buf.clear();
    let saved = OUTGOING.try_with(|o| o.replace(Some(Vec::new())));
    // Through `Extend`, not `to_allocvec`: encoding a chunk of 16,384
    // `(u64,)` took 31 us this way against 93 us.
    let bytes = postcard::to_extend(value, buf);
    let fds = match saved {
        Ok(saved) => OUTGOING.with(|o| o.replace(saved)).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    match bytes {
        Ok(bytes) => Ok(Encoded { bytes, fds }),
        Err(e) => Err(codec_error("encode", std::any::type_name::<T>(), e)),
    }
}

/// Decodes a `T` from `encoded`. Every byte must be used; fds that no
/// handle claimed are closed.
pub(crate) fn decode<T: DeserializeOwned>(encoded: Encoded) -> Result<T> {
    decode_at(encoded, 0)
}

/// [`decode`] of the bytes from `offset` on: the body of a message whose
/// header was read with [`decode_prefix`], without copying it out.
pub(crate) fn decode_at<T: DeserializeOwned>(encoded: Encoded, offset: usize) -> Result<T> {
    decode_slice(encoded.bytes.get(offset..).unwrap_or_default(), encoded.fds)
}

/// [`decode`] of `bytes` with the handles' `fds`: for bytes the caller
/// keeps (a buffer it reuses).
pub(crate) fn decode_slice<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    forget_custom();
    let table = fds.into_iter().map(Some).collect();
    let saved = INCOMING.try_with(|i| i.replace(Some(table)));
    let result = postcard::take_from_bytes::<T>(bytes);
    if let Ok(saved) = saved {
        INCOMING.with(|i| i.replace(saved));
    }
    match result {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Codec(format!(
            "{} trailing bytes after a value of type `{}`",
            rest.len(),
            std::any::type_name::<T>()
        ))),
        Err(e) => Err(codec_error("decode", std::any::type_name::<T>(), e)),
    }
}

/// [`decode_at`] through a serde `seed`: for decoding into something that
/// exists already (appending to a `Vec`, say) instead of a new value.
pub(crate) fn decode_seed_at<S, V>(encoded: Encoded, offset: usize, seed: S) -> Result<V>
where
    S: for<'de> serde::de::DeserializeSeed<'de, Value = V>,
{
    forget_custom();
    let table = encoded.fds.into_iter().map(Some).collect();
    let saved = INCOMING.try_with(|i| i.replace(Some(table)));
    let mut de = postcard::Deserializer::from_bytes(encoded.bytes.get(offset..).unwrap_or_default());
    let result = seed.deserialize(&mut de).and_then(|value| de.finalize().map(|rest| (value, rest.len())));
    if let Ok(saved) = saved {
        INCOMING.with(|i| i.replace(saved));
    }
    match result {
        Ok((value, 0)) => Ok(value),
        Ok((_, rest)) => Err(Error::Codec(format!("{rest} trailing bytes after a value"))),
        Err(e) => Err(codec_error("decode", std::any::type_name::<S>(), e)),
    }
}

/// Decodes a `T` (holding no handles, and perhaps borrowing from
/// `bytes`) from the start of `bytes`, and returns it with the bytes after
/// it: for a message made of a header and a body that only its receiver's
/// receiver decodes.
pub(crate) fn decode_prefix<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8])> {
    postcard::take_from_bytes::<T>(bytes).map_err(|e| codec_error("decode", std::any::type_name::<T>(), e))
}

/// Encodes `header` (holding no handles) followed by `body`, as
/// [`decode_prefix`] takes them apart.
pub(crate) fn encode_with_body<T: Serialize>(header: &T, body: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = postcard::to_extend(header, Vec::with_capacity(16 + body.len()))
        .map_err(|e| codec_error("encode", std::any::type_name::<T>(), e))?;
    bytes.extend_from_slice(body);
    Ok(bytes)
}

fn codec_error(what: &str, ty: &str, e: postcard::Error) -> Error {
    let said = match e {
        postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom => {
            CUSTOM.try_with(|c| c.borrow_mut().take()).ok().flatten()
        }
        _ => None,
    };
    match said {
        Some(said) => Error::Codec(format!("could not {what} a value of type `{ty}`: {said}")),
        None => Error::Codec(format!("could not {what} a value of type `{ty}`: {e}")),
    }
}

thread_local! {
    /// The words of the last error made by [`ser_error`] or [`de_error`]:
    /// postcard's own custom errors drop them.
    static CUSTOM: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets words of an error that was made and then recovered from, so
/// that they are not given for another.
fn forget_custom() {
    let _ = CUSTOM.try_with(|c| c.borrow_mut().take());
}

fn keep_custom(msg: &dyn std::fmt::Display) -> String {
    let msg = msg.to_string();
    let _ = CUSTOM.try_with(|c| *c.borrow_mut() = Some(msg.clone()));
    msg
}

/// A serialization error whose words reach the [`Error::Codec`] the
/// caller gets (with `S::Error::custom`, postcard keeps none).
pub(crate) fn ser_error<E: serde::ser::Error>(msg: impl std::fmt::Display) -> E {
    E::custom(keep_custom(&msg))
}

/// A deserialization error whose words reach the [`Error::Codec`] the
/// caller gets, as [`ser_error`].
pub(crate) fn de_error<E: serde::de::Error>(msg: impl std::fmt::Display) -> E {
    E::custom(keep_custom(&msg))
}

/// Serializes a handle's fd: duplicates it into the side table of the
/// `encode` under way and writes its index.
///
/// Fails outside `encode`: a handle only means something when its fd
/// travels with it, so it cannot go through serde_json or a file.
pub(crate) fn serialize_fd<S: Serializer>(fd: BorrowedFd<'_>, serializer: S) -> Result<S::Ok, S::Error> {
    let index = OUTGOING.try_with(|o| {
        let mut o = o.borrow_mut();
        let table = o.as_mut().ok_or_else(|| {
            ser_error(
                "a multiproc handle can only be sent through multiproc \
                 (as an argument of a remote fn, or through a pipe or queue)",
            )
        })?;
        let dup = fd.try_clone_to_owned().map_err(ser_error)?;
        table.push(dup);
        Ok(table.len() as u32 - 1)
    });
    let index = index.unwrap_or_else(|_| Err(ser_error("no handle table in a thread that is exiting")))?;
    serializer.serialize_u32(index)
}

/// Deserializes a handle's fd: reads an index and takes that fd from the
/// side table of the `decode` under way.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    let taken = INCOMING.try_with(|i| {
        let mut i = i.borrow_mut();
        let table = i
            .as_mut()
            .ok_or_else(|| de_error("a multiproc handle can only be received through multiproc"))?;
        table
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| de_error(format!("handle {index} did not arrive with the message")))
    });
    taken.unwrap_or_else(|_| Err(de_error("no handle table in a thread that is exiting")))
}

/// A handle's fd on its way out: serializes as in [`serialize_fd`].
#[derive(Debug)]
pub(crate) struct SendFd<'a>(pub(crate) BorrowedFd<'a>);

impl Serialize for SendFd<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fd(self.0, serializer)
    }
}

/// A handle's fd on its way in: deserializes as in [`deserialize_fd`].
#[derive(Debug)]
pub(crate) struct RecvFd(pub(crate) OwnedFd);

impl<'de> Deserialize<'de> for RecvFd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_fd(deserializer).map(RecvFd)
    }
}

/// Bytes that serialize as bytes, not as a sequence of numbers.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// The owned form of [`Bytes`].
pub(crate) struct ByteBuf(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        deserializer.deserialize_byte_buf(Visit)
    }
}

// An encoded value travels inside another message (a pool worker's
// initializer arguments, say) as its bytes, with its handles' fds moved to
// the outer message's side table.
impl Serialize for Encoded {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let fds: Vec<SendFd<'_>> = self.fds.iter().map(|fd| SendFd(std::os::fd::AsFd::as_fd(fd))).collect();
        (Bytes(&self.bytes), fds).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Encoded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (ByteBuf(bytes), fds): (ByteBuf, Vec<RecvFd>) = Deserialize::deserialize(deserializer)?;
        Ok(Encoded { bytes, fds: fds.into_iter().map(|RecvFd(fd)| fd).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn values_round_trip() {
        let v = (7u64, String::from("seven"), vec![Some(-1i32), None]);
        let enc = encode(&v).unwrap();
        assert!(enc.fds.is_empty());
        assert_eq!(decode::<(u64, String, Vec<Option<i32>>)>(enc).unwrap(), v);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut enc = encode(&5u8).unwrap();
        enc.bytes.push(0);
        let err = decode::<u8>(enc).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn wrong_type_is_a_codec_error() {
        let enc = Encoded::from_bytes(vec![0xff, 0xff, 0xff]);
        assert!(matches!(decode::<String>(enc), Err(Error::Codec(_))));
    }

    struct Handle(OwnedFd);

    impl Serialize for Handle {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_fd(self.0.as_fd(), s)
        }
    }

    impl<'de> Deserialize<'de> for Handle {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_fd(d).map(Handle)
        }
    }

    #[test]
    fn handles_travel_in_the_side_table() {
        let (a, _b) = crate::sys::socket::socketpair().unwrap();
        let enc = encode(&(1u8, Handle(a))).unwrap();
        assert_eq!(enc.fds.len(), 1);
        let (one, _h): (u8, Handle) = decode(enc).unwrap();
        assert_eq!(one, 1);
    }

    #[test]
    fn handles_outside_the_codec_are_refused() {
        let (a, _b) = crate::sys::socket::socketpair().unwrap();
        assert!(postcard::to_allocvec(&Handle(a)).is_err());
    }

    #[test]
    fn a_missing_handle_is_a_codec_error() {
        let (a, _b) = crate::sys::socket::socketpair().unwrap();
        let mut enc = encode(&Handle(a)).unwrap();
        enc.fds.clear();
        assert!(matches!(decode::<Handle>(enc), Err(Error::Codec(_))));
    }
}
