//! Harnesses for the fuzz targets under `fuzz/` (the `fuzzing` feature).
//! Not a public API.
//!
//! Each function takes arbitrary bytes, drives one decoder with them and
//! panics if an invariant breaks, so a fuzz target is one call. Errors the
//! decoder reports are fine; panics, wrong answers and allocations beyond
//! what the input justifies (caught by libFuzzer's `-malloc_limit_mb`) are
//! not.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use crate::codec::{FrameReader, FrameTooLong, ReadOutcome};
use crate::connection::auth::{Handshake, MAX_HANDSHAKE_FRAME, NONCE_LEN, Step};
use crate::error::Error;
use crate::sys::socket::socketpair;

// ---------------------------------------------------------------------------
// Frames

/// The payload limits a frame harness picks from.
const MAX_LENS: [usize; 16] = [0, 1, 2, 3, 4, 7, 8, 12, 16, 100, 255, 256, 4096, 65536, 1 << 20, usize::MAX];

/// The largest write a frame harness makes at once, picked from these.
const MAX_CHUNKS: [usize; 8] = [1, 2, 3, 5, 8, 13, 64, 1 << 16];

/// What a [`FrameReader`] reports, in order, for one stream.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Frame(Vec<u8>),
    /// An `InvalidData` error for a frame over the limit; the stream goes on.
    TooLong {
        len: usize,
        max: usize,
    },
    /// An `InvalidData` error for a length that is neither `>= 0` nor `-1`.
    BadHeader,
    /// `UnexpectedEof`: the stream ended inside a frame.
    EofInFrame,
    /// End of file on a frame boundary.
    Eof,
}

impl Event {
    /// Whether nothing follows this event.
    fn is_last(&self) -> bool {
        matches!(self, Event::BadHeader | Event::EofInFrame | Event::Eof)
    }
}

/// The limit in force: `first` until the first frame (or refused frame),
/// then, if `alternate`, it swaps with `second` after every one.
#[derive(Debug, Clone)]
struct Limits {
    current: usize,
    other: usize,
    alternate: bool,
}

impl Limits {
    fn new(config: u8) -> Limits {
        Limits {
            current: MAX_LENS[usize::from(config & 0x0f)],
            other: MAX_LENS[usize::from((config >> 4) & 0x07)],
            alternate: config & 0x80 != 0,
        }
    }

    fn advance(&mut self) {
        if self.alternate {
            std::mem::swap(&mut self.current, &mut self.other);
        }
    }
}

/// What a reader must report for `stream`, from the framing rules alone.
fn expected_events(mut stream: &[u8], mut limits: Limits) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        if stream.is_empty() {
            events.push(Event::Eof);
            return events;
        }
        let Some((short, after)) = stream.split_first_chunk::<4>() else {
            events.push(Event::EofInFrame);
            return events;
        };
        let (len, after) = match i32::from_be_bytes(*short) {
            short @ 0.. => (short as usize, after),
            -1 => {
                let Some((long, after)) = after.split_first_chunk::<8>() else {
                    events.push(Event::EofInFrame);
                    return events;
                };
                match usize::try_from(u64::from_be_bytes(*long)) {
                    Ok(len) => (len, after),
                    Err(_) => {
                        events.push(Event::BadHeader);
                        return events;
                    }
                }
            }
            _ => {
                events.push(Event::BadHeader);
                return events;
            }
        };
        if len > limits.current {
            events.push(Event::TooLong { len, max: limits.current });
        } else if len <= after.len() {
            events.push(Event::Frame(after[..len].to_vec()));
        }
        if len > after.len() {
            events.push(Event::EofInFrame);
            return events;
        }
        limits.advance();
        stream = &after[len..];
    }
}

/// What one call to [`FrameReader::read`] reported, or `None` for
/// `WouldBlock`.
fn event(outcome: io::Result<ReadOutcome>, max: usize) -> Option<Event> {
    match outcome {
        Ok(ReadOutcome::Frame(frame)) => {
            assert!(frame.bytes.len() <= max, "a {}-byte frame got past a limit of {max}", frame.bytes.len());
            assert!(frame.fds.is_empty(), "fds appeared from nowhere");
            Some(Event::Frame(frame.bytes))
        }
        Ok(ReadOutcome::WouldBlock) => None,
        Ok(ReadOutcome::Eof) => Some(Event::Eof),
        Err(e) => match e.kind() {
            io::ErrorKind::InvalidData => {
                match e.get_ref().and_then(|inner| inner.downcast_ref::<FrameTooLong>()) {
                    Some(&FrameTooLong { len, max: refused_at }) => {
                        assert_eq!(refused_at, max, "refused against a stale limit");
                        assert!(len > max, "a {len}-byte frame refused under a limit of {max}");
                        Some(Event::TooLong { len, max })
                    }
                    None => Some(Event::BadHeader),
                }
            }
            io::ErrorKind::UnexpectedEof => Some(Event::EofInFrame),
            _ => panic!("unexpected error from the frame reader: {e:?}"),
        },
    }
}

/// A small deterministic generator of chunk sizes.
struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    fn new(config: u8) -> Chunks {
        Chunks { state: 0x9e37_79b9 ^ u32::from(config), max: MAX_CHUNKS[usize::from(config & 0x07)] }
    }

    fn next(&mut self) -> usize {
        // xorshift32
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % self.max
    }
}

/// Writes `input[2..]` into a socket, in chunks chosen by `input[1]`,
/// interleaved with non-blocking reads by a `FrameReader` (exact or
/// reading ahead, by the top bit of `input[1]`) whose limit is chosen by
/// `input[0]`, then closes the writing end. Checks that the
/// reader reports exactly the frames, refusals and errors the framing rules
/// call for, that no frame exceeds the limit, that a refused frame leaves
/// the stream readable, and that the reader never blocks once everything
/// has been sent.
pub fn frames(input: &[u8]) {
    let [config, chunking, stream @ ..] = input else { return };
    let mut limits = Limits::new(*config);
    let expected = expected_events(stream, limits.clone());

    let (writer, reader_end) = socketpair().expect("socketpair");
    let writer = UnixStream::from(writer);
    writer.set_nonblocking(true).expect("a non-blocking writer");
    let mut writer = Some(writer);
    let mut chunks = Chunks::new(*chunking);
    let mut sent = 0;
    // The top bit of the chunking byte picks the reader: exact, or reading
    // ahead (as a connection's does).
    let mut reader = if chunking & 0x80 == 0 {
        FrameReader::new(limits.current)
    } else {
        FrameReader::read_ahead(limits.current)
    };
    let mut events = Vec::new();
    loop {
        let Some(event) = event(reader.read(reader_end.as_fd(), true), limits.current) else {
            // The reader has all that was sent: send more, or the end.
            let Some(w) = writer.as_mut() else {
                panic!("the reader would block after the writer closed; so far {events:?}");
            };
            if sent == stream.len() {
                writer = None;
                continue;
            }
            let end = stream.len().min(sent + chunks.next());
            match w.write(&stream[sent..end]) {
                Ok(0) => panic!("the socket took no bytes"),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("writing the stream failed: {e}"),
            }
            continue;
        };
        let last = event.is_last();
        if matches!(event, Event::Frame(_) | Event::TooLong { .. }) {
            limits.advance();
            reader.set_max_len(limits.current);
        }
        events.push(event);
        if last {
            break;
        }
    }
    assert_eq!(events, expected, "the reader disagrees with the framing rules");

    // The end is sticky: reading again reports the same, and never panics.
    let again = event(reader.read(reader_end.as_fd(), true), limits.current);
    assert_eq!(again.as_ref(), events.last(), "reading past the end changed the answer");
}

// ---------------------------------------------------------------------------
// The authkey handshake

/// A key the fuzzer cannot learn: it only ever goes into HMACs, which are
/// compared in constant time.
const SECRET: &[u8; 32] = b"\x8f\x1d\x0b\x73\x5e\xa2\xc4\x19\x66\xf0\x2b\x91\xd8\x47\x3a\xe5\
\x0c\x5f\xb6\x28\x93\x7e\xd1\x4a\xa9\x02\xe7\x6c\x35\xb8\x10\xfd";

const SERVER_NONCE: [u8; NONCE_LEN] = [0x5a; NONCE_LEN];
const CLIENT_NONCE: [u8; NONCE_LEN] = [0xa5; NONCE_LEN];

const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";

/// Splits `input` into frames: a length byte, then that many bytes; a
/// length byte of 255 is followed by a second one that is added to it, so
/// frames over [`MAX_HANDSHAKE_FRAME`] occur too. The last frame may be
/// short.
fn split_frames(mut input: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while let Some((&len, rest)) = input.split_first() {
        let (len, rest) = match (len, rest.split_first()) {
            (255, Some((&extra, rest))) => (255 + usize::from(extra), rest),
            _ => (usize::from(len), rest),
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        frames.push(frame);
        input = rest;
    }
    frames
}

/// Feeds `frame` to `machine`, checks what it says against what a
/// [`Step`] may say, and keeps its outcome in `outcome` (which must be
/// `None` unless the machine is over).
fn feed(machine: &mut Handshake, frame: &[u8], outcome: &mut Option<Result<(), String>>) -> Vec<Vec<u8>> {
    let Step { send, outcome: now } = machine.receive(frame);
    for reply in &send {
        assert!(reply.len() <= MAX_HANDSHAKE_FRAME, "a {}-byte reply, which the peer refuses", reply.len());
    }
    if outcome.is_some() {
        assert!(
            matches!(now, Some(Err(Error::Auth(_)))) && send.is_empty(),
            "a frame after the outcome gave {now:?} and sent {send:?}"
        );
        assert!(machine.is_done());
        return send;
    }
    match now {
        None => {
            assert!(!machine.is_done(), "done without an outcome");
            assert_eq!(send.len(), 1, "an unfinished step sends one frame, not {send:?}");
        }
        Some(now) => {
            assert!(machine.is_done(), "an outcome, but not done");
            match now {
                Ok(()) => assert!(send.is_empty() || send == [WELCOME], "success sent {send:?}"),
                Err(Error::Auth(why)) => {
                    assert!(send.is_empty() || send == [FAILURE], "failure sent {send:?}");
                    *outcome = Some(Err(why));
                    return send;
                }
                Err(e) => panic!("the handshake failed with a non-authentication error: {e:?}"),
            }
            *outcome = Some(Ok(()));
        }
    }
    send
}

/// Bytes `input[at..]`, cycled, to fill an array (zeros if empty).
fn filled<const N: usize>(input: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    for (slot, byte) in out.iter_mut().zip(input.iter().cycle()) {
        *slot = *byte;
    }
    out
}

/// Plays the handshake with arbitrary bytes. `input[0] % 3` picks the mode:
///
/// - 0, 1: a server (0) or a client (1) machine with a secret key is fed
///   the frames `split_frames` cuts from `input[1..]`. It never panics,
///   never succeeds (that would take the HMAC of a key the fuzzer does not
///   know), never replies with a frame the peer would refuse, and every
///   frame after its outcome is an error.
/// - 2: a server and a client with keys (same or different) and nonces
///   from the input talk to each other, and one byte of one frame may be
///   flipped on the way. Without a flip both succeed iff the keys are
///   equal (as HMAC keys: see `hmac_equivalent`), and both fail
///   otherwise; with one, the server never succeeds,
///   and the client only if the flip hit the very last frame (its own
///   `#WELCOME#`) and the keys are equal.
///
/// Bit `0x04` of `input[0]` refuses MD5 responses, bit `0x08` on the
/// client side too.
pub fn handshake(input: &[u8]) {
    let Some((&config, rest)) = input.split_first() else { return };
    let md5_server = config & 0x04 == 0;
    let md5_client = config & 0x08 == 0;
    match config % 3 {
        0 | 1 => {
            let (mut machine, _challenge) = if config % 3 == 0 {
                let (machine, challenge) = Handshake::server_with_nonce(SECRET, SERVER_NONCE);
                (machine.accept_md5(md5_server), Some(challenge))
            } else {
                (Handshake::client_with_nonce(SECRET, CLIENT_NONCE).accept_md5(md5_client), None)
            };
            let mut outcome = None;
            for frame in split_frames(rest) {
                feed(&mut machine, frame, &mut outcome);
                assert!(
                    !matches!(outcome, Some(Ok(()))),
                    "{machine:?} authenticated a peer that cannot know the key"
                );
            }
        }
        _ => relay(rest, md5_server, md5_client),
    }
}

/// Whether HMAC-SHA256 (what both sides' challenges ask for) treats `a`
/// and `b` as the same key: HMAC hashes a key longer than the block and
/// pads a shorter one with zeros, so `b"k"` and `b"k\0"` are one key, here
/// as in CPython.
fn hmac_equivalent(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest as _;
    const BLOCK: usize = 64;
    let padded = |key: &[u8]| -> [u8; BLOCK] {
        let mut out = [0; BLOCK];
        if key.len() > BLOCK {
            out[..32].copy_from_slice(&sha2::Sha256::digest(key));
        } else {
            out[..key.len()].copy_from_slice(key);
        }
        out
    };
    padded(a) == padded(b)
}

/// Mode 2 of [`handshake`]: `input` is `flags`, `tamper_at`, `tamper_pos`,
/// `tamper_xor`, then the keys (a length byte and the bytes for each, the
/// client's key being the server's unless bit 0 of `flags` is set), then
/// bytes for the nonces.
fn relay(input: &[u8], md5_server: bool, md5_client: bool) {
    let [flags, tamper_at, tamper_pos, tamper_xor, rest @ ..] = input else { return };
    let take = |rest: &[u8]| -> (Vec<u8>, usize) {
        let Some((&len, bytes)) = rest.split_first() else { return (Vec::new(), 0) };
        let len = usize::from(len).min(bytes.len());
        (bytes[..len].to_vec(), 1 + len)
    };
    let (server_key, used) = take(rest);
    let rest = &rest[used..];
    let (client_key, rest) = if flags & 1 != 0 {
        let (key, used) = take(rest);
        (key, &rest[used..])
    } else {
        (server_key.clone(), rest)
    };
    let server_nonce: [u8; NONCE_LEN] = filled(rest);
    let client_nonce: [u8; NONCE_LEN] = filled(rest.get(NONCE_LEN..).unwrap_or(&[1]));
    let tamper = (flags & 2 != 0).then_some((usize::from(*tamper_at % 8), usize::from(*tamper_pos)));
    let xor = (*tamper_xor).max(1);

    let (server, challenge) = Handshake::server_with_nonce(&server_key, server_nonce);
    let mut machines = [
        server.accept_md5(md5_server),
        Handshake::client_with_nonce(&client_key, client_nonce).accept_md5(md5_client),
    ];
    let mut outcomes: [Option<Result<(), String>>; 2] = [None, None];
    // (to the client?, frame)
    let mut wire = VecDeque::from([(true, challenge)]);
    let mut index = 0;
    let mut tampered_at = None;
    while let Some((to_client, mut frame)) = wire.pop_front() {
        assert!(index < 6, "the handshake took more than six frames");
        if let Some((at, pos)) = tamper
            && at == index
            && !frame.is_empty()
        {
            let pos = pos % frame.len();
            frame[pos] ^= xor;
            tampered_at = Some(index);
        }
        index += 1;
        let side = usize::from(to_client);
        if outcomes[side].is_some() {
            // Over for this side: it reads no more.
            continue;
        }
        let send = feed(&mut machines[side], &frame, &mut outcomes[side]);
        wire.extend(send.into_iter().map(|reply| (!to_client, reply)));
    }

    let [server, client] = &outcomes;
    let same_key = hmac_equivalent(&server_key, &client_key);
    match tampered_at {
        None if same_key => {
            assert!(matches!(server, Some(Ok(()))) && matches!(client, Some(Ok(()))), "{outcomes:?}");
            assert_eq!(index, 6);
        }
        None => {
            assert!(
                matches!(server, Some(Err(m)) if m.starts_with("digest received was wrong")),
                "{outcomes:?}"
            );
            assert!(
                matches!(client, Some(Err(m)) if m.starts_with("digest sent was rejected")),
                "{outcomes:?}"
            );
        }
        Some(at) => {
            assert!(
                !matches!(server, Some(Ok(()))),
                "the server accepted a tampered frame {at}: {outcomes:?}"
            );
            if matches!(client, Some(Ok(()))) {
                assert!(same_key && at == 5, "the client accepted a tampered frame {at}: {outcomes:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Pickles

#[cfg(feature = "pickle")]
pub use self::pickles::pickle;

#[cfg(feature = "pickle")]
mod pickles {
    use std::collections::{BTreeMap, HashSet};
    use std::fmt;

    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeSeq, Serializer};
    use serde::{Deserialize, Serialize};

    use crate::codec::pickle::{HIGHEST_PROTOCOL, from_pickle, to_pickle};
    use crate::error::Error;

    /// Any value, as `deserialize_any` sees it.
    #[derive(Debug, Clone)]
    pub(super) enum Any {
        Unit,
        Bool(bool),
        Int(i128),
        Big(u128),
        Float(f64),
        Str(String),
        Bytes(Vec<u8>),
        Seq(Vec<Any>),
        Map(Vec<(Any, Any)>),
    }

    impl PartialEq for Any {
        fn eq(&self, other: &Any) -> bool {
            match (self, other) {
                (Any::Unit, Any::Unit) => true,
                (Any::Bool(a), Any::Bool(b)) => a == b,
                (Any::Int(a), Any::Int(b)) => a == b,
                (Any::Big(a), Any::Big(b)) => a == b,
                // NaN is itself.
                (Any::Float(a), Any::Float(b)) => a.to_bits() == b.to_bits(),
                (Any::Str(a), Any::Str(b)) => a == b,
                (Any::Bytes(a), Any::Bytes(b)) => a == b,
                (Any::Seq(a), Any::Seq(b)) => a == b,
                (Any::Map(a), Any::Map(b)) => a == b,
                _ => false,
            }
        }
    }

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Any, D::Error> {
            deserializer.deserialize_any(AnyVisitor)
        }
    }

    struct AnyVisitor;

    impl<'de> Visitor<'de> for AnyVisitor {
        type Value = Any;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any value")
        }

        fn visit_unit<E>(self) -> Result<Any, E> {
            Ok(Any::Unit)
        }

        fn visit_none<E>(self) -> Result<Any, E> {
            Ok(Any::Unit)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Any, D::Error> {
            Any::deserialize(deserializer)
        }

        fn visit_bool<E>(self, v: bool) -> Result<Any, E> {
            Ok(Any::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Any, E> {
            Ok(Any::Int(v.into()))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Any, E> {
            Ok(Any::Int(v.into()))
        }

        fn visit_i128<E>(self, v: i128) -> Result<Any, E> {
            Ok(Any::Int(v))
        }

        fn visit_u128<E>(self, v: u128) -> Result<Any, E> {
            Ok(i128::try_from(v).map_or(Any::Big(v), Any::Int))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Any, E> {
            Ok(Any::Float(v))
        }

        fn visit_str<E>(self, v: &str) -> Result<Any, E> {
            Ok(Any::Str(v.to_owned()))
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<Any, E> {
            Ok(Any::Bytes(v.to_vec()))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Any, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(Any::Seq(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(Any::Map(entries))
        }
    }

    impl Serialize for Any {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self {
                Any::Unit => serializer.serialize_unit(),
                Any::Bool(b) => serializer.serialize_bool(*b),
                Any::Int(i) => serializer.serialize_i128(*i),
                Any::Big(u) => serializer.serialize_u128(*u),
                Any::Float(f) => serializer.serialize_f64(*f),
                Any::Str(s) => serializer.serialize_str(s),
                Any::Bytes(b) => serializer.serialize_bytes(b),
                Any::Seq(items) => {
                    let mut seq = serializer.serialize_seq(Some(items.len()))?;
                    for item in items {
                        seq.serialize_element(item)?;
                    }
                    seq.end()
                }
                Any::Map(entries) => {
                    let mut map = serializer.serialize_map(Some(entries.len()))?;
                    for (key, value) in entries {
                        map.serialize_entry(key, value)?;
                    }
                    map.end()
                }
            }
        }
    }

    /// A struct as a user would derive it.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only decoded")]
    struct Record {
        name: String,
        tags: Vec<String>,
        #[serde(default)]
        score: Option<f64>,
        #[serde(with = "serde_bytes_like")]
        blob: Vec<u8>,
        nested: Option<Box<Record>>,
        shape: Shape,
    }

    /// `Vec<u8>` from Python bytes, without depending on `serde_bytes`.
    mod serde_bytes_like {
        use serde::Deserializer;
        use serde::de::{self, Visitor};

        pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
            struct BytesVisitor;
            impl Visitor<'_> for BytesVisitor {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }

    /// An enum of every variant kind.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only decoded")]
    enum Shape {
        Unit,
        Newtype(i32),
        Tuple(u8, char),
        Struct { x: f32, y: Option<u16> },
    }

    /// Whether `result` is a success or a codec error (anything else is a
    /// bug).
    fn checked<T: fmt::Debug>(result: crate::error::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Codec(_)) => None,
            Err(e) => panic!("decoding a pickle failed with a non-codec error: {e:?}"),
        }
    }

    /// Decodes `input` as a pickle into several types: nothing may panic or
    /// fail other than with [`Error::Codec`]. A value decoded with
    /// `deserialize_any` that encodes again must decode to itself.
    pub fn pickle(input: &[u8]) {
        checked(from_pickle::<(String, Vec<i64>)>(input));
        checked(from_pickle::<BTreeMap<String, Option<f64>>>(input));
        checked(from_pickle::<HashSet<i32>>(input));
        checked(from_pickle::<Vec<Record>>(input));
        checked(from_pickle::<Shape>(input));
        checked(from_pickle::<Option<[u8; 4]>>(input));
        let Some(any) = checked(from_pickle::<Any>(input)) else { return };
        // Encoding may refuse (a list as a dict key); decoding what it wrote
        // may not.
        for protocol in [2, HIGHEST_PROTOCOL] {
            let Some(again) = checked(to_pickle(&any, protocol)) else { continue };
            let back = from_pickle::<Any>(&again).unwrap_or_else(|e| {
                panic!("our own protocol {protocol} pickle of {any:?} did not decode: {e}")
            });
            assert_eq!(back, any, "protocol {protocol} round trip");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        [&(payload.len() as i32).to_be_bytes()[..], payload].concat()
    }

    fn long_frame(payload: &[u8]) -> Vec<u8> {
        [&[0xff; 4][..], &(payload.len() as u64).to_be_bytes(), payload].concat()
    }

    #[test]
    fn frame_harness() {
        let valid = [frame(b"hello"), frame(b""), long_frame(b"abc"), frame(&[7; 300])].concat();
        // Every limit and chunking, alternating or not.
        for config in [0x00, 0x0c, 0x0f, 0x9b, 0xf3, 0x8a] {
            for chunking in [0, 1, 5, 7, 0xff] {
                frames(&[&[config, chunking][..], &valid].concat());
                frames(&[config, chunking]);
                // A negative length, and -2 after a good frame.
                frames(&[&[config, chunking][..], &(-2i32).to_be_bytes()].concat());
                frames(&[&[config, chunking][..], &frame(b"x"), &(i32::MIN).to_be_bytes()[..]].concat());
                // Truncated: in the header, in the long header, in the payload.
                frames(&[config, chunking, 0, 0]);
                frames(&[config, chunking, 0xff, 0xff, 0xff, 0xff, 0, 0]);
                frames(&[&[config, chunking][..], &frame(b"abcdef")[..7]].concat());
                // A claimed length far beyond what is sent.
                frames(&[&[config, chunking][..], &(i32::MAX).to_be_bytes(), b"abc"].concat());
                frames(&[&[config, chunking][..], &[0xff; 4], &u64::MAX.to_be_bytes(), b"abc"].concat());
            }
        }
    }

    #[test]
    fn model_matches_the_reader_on_known_streams() {
        let limits = Limits::new(0x09); // 100, never changes
        let stream = [frame(&[1; 200]), frame(b"ok"), (-3i32).to_be_bytes().to_vec()].concat();
        assert_eq!(
            expected_events(&stream, limits),
            [Event::TooLong { len: 200, max: 100 }, Event::Frame(b"ok".to_vec()), Event::BadHeader]
        );
    }

    fn framed(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            if frame.len() >= 255 {
                out.extend([255, (frame.len() - 255) as u8]);
            } else {
                out.push(frame.len() as u8);
            }
            out.extend_from_slice(frame);
        }
        out
    }

    #[test]
    fn handshake_harness() {
        let challenge = [&b"#CHALLENGE#{sha256}"[..], &[9; 40]].concat();
        let md4 = [&b"#CHALLENGE#{md4}"[..], &[9; 40]].concat();
        let response = [&b"{sha256}"[..], &[3; 32]].concat();
        let wrong_name = [&b"{md4}"[..], &[3; 16]].concat();
        let inputs: [&[&[u8]]; 7] = [
            &[&response, WELCOME, &challenge],
            &[&wrong_name],
            &[&[3; 16]],
            &[&challenge, WELCOME, &response, b"late"],
            &[&md4],
            &[&challenge, b"#FAILURE#"],
            &[&[0; 300], &challenge],
        ];
        for frames in inputs {
            for config in [0, 1, 4, 13] {
                handshake(&[&[config][..], &framed(frames)].concat());
            }
        }
        // Mode 2: same keys, different keys, empty keys; with and without
        // a flipped byte in each of the six frames.
        for flags in [0, 1, 2, 3] {
            for at in 0..8 {
                for keys in [
                    &[3, b'k', b'e', b'y', 3, b'k', b'e', b'y'][..],
                    &[3, b'k', b'e', b'y', 3, b'y', b'e', b'k'],
                    &[0, 0],
                    &[],
                    // Equal as HMAC keys (zero padding); the first input
                    // the fuzzer found against a too strict check.
                    &[1, 0, 0],
                    &[3, b'k', b'e', b'y', 4, b'k', b'e', b'y', 0],
                ] {
                    handshake(&[&[2, flags, at, 17, 0][..], keys, b"nonces"].concat());
                }
            }
        }
    }

    #[test]
    fn hmac_keys_are_equal_up_to_padding_and_hashing() {
        use sha2::Digest as _;
        let long = [7u8; 65];
        assert!(hmac_equivalent(&long, &sha2::Sha256::digest(long)));
        assert!(hmac_equivalent(b"", &[0; 64]));
        assert!(!hmac_equivalent(b"", &[0; 65]));
        assert!(!hmac_equivalent(b"key", b"yek"));
        // What the fuzzer found: keys [0] and [], which both sides accept.
        handshake(&[2, 1, 0xff, 0xff, 0xff, 0xfd, 0]);
    }

    #[cfg(feature = "pickle")]
    #[test]
    fn pickle_harness() {
        use crate::codec::pickle::to_pickle;
        let good = [
            to_pickle(&("name", vec![1i64, -2, 3]), 4).unwrap(),
            to_pickle(&std::collections::BTreeMap::from([("a", Some(1.5)), ("b", None)]), 2).unwrap(),
            to_pickle(&vec![f64::NAN, f64::INFINITY], 5).unwrap(),
        ];
        for pickle in &good {
            super::pickle(pickle);
            for end in 0..pickle.len() {
                super::pickle(&pickle[..end]);
            }
        }
        // Protocol 0 by hand, a global that is refused, a memo reference to
        // nothing, and nested empty lists.
        for hostile in [
            &b"(lp0\nI1\naI2\na."[..],
            b"cos\nsystem\n(S'true'\ntR.",
            b"\x80\x04h\x05.",
            b"\x80\x02]]]]]]]]eeeeeee.",
        ] {
            super::pickle(hostile);
        }
    }
}
