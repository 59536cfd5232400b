//! The authkey handshake of CPython's `multiprocessing.connection`.
//!
//! Both ends prove that they hold the same key without sending it: each
//! sends the other a random challenge and checks the HMAC that comes back.
//! The side that accepted the connection challenges first (Python's
//! `deliver_challenge`, then `answer_challenge`); the side that connected
//! answers first. Six frames in all:
//!
//! ```text
//! server -> client   #CHALLENGE#{sha256}<40 random bytes>
//! client -> server   {sha256}<HMAC-SHA256(key, "{sha256}<40 random bytes>")>
//! server -> client   #WELCOME#   (or #FAILURE#, and it is over)
//! client -> server   #CHALLENGE#...      the same three frames,
//! server -> client   {...}...            the other way round
//! client -> server   #WELCOME#
//! ```
//!
//! The answering side picks the digest (md5, sha256, sha384, sha3_256 or
//! sha3_384). Python 3.11 and older challenge with 20 random bytes and no
//! prefix, and answer any challenge with a raw 16-byte HMAC-MD5 of what
//! follows `#CHALLENGE#`; both forms are understood, so every CPython
//! version interoperates.
//!
//! The module does no I/O. A [`Handshake`] is fed whole received frames and
//! says which frames to send, so the listener can drive many handshakes at
//! once and a fuzzer can drive one with arbitrary bytes; [`run`] drives one
//! to its end over a [`Channel`], blocking.
//!
//! # Caveats
//!
//! - The handshake proves that both sides hold the key, and its random
//!   challenges stop replays. It neither encrypts nor authenticates the
//!   messages that follow.
//! - An empty key is a real key, as in Python 3.13 and later. A Python 3.12
//!   or older `Listener` with `authkey=b""` skips the handshake, so a client
//!   with an empty key cannot authenticate to it.
//! - Like Python 3.12 and later, a challenge shorter than 20 bytes is
//!   refused rather than answered.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use hmac::digest::common::BlockSizeUser;
use hmac::{KeyInit, Mac, SimpleHmac};

use super::Channel;
use crate::error::{Error, Result};
use crate::sys;

/// Longest frame accepted during the handshake (CPython: `recv_bytes(256)`).
pub(crate) const MAX_HANDSHAKE_FRAME: usize = 256;

/// Random bytes in a challenge this side sends (CPython 3.12+:
/// `MESSAGE_LENGTH`).
pub(crate) const NONCE_LEN: usize = 40;

/// What every challenge frame starts with.
const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// The verdict on a right response.
const WELCOME: &[u8] = b"#WELCOME#";
/// The verdict on a wrong one.
const FAILURE: &[u8] = b"#FAILURE#";

/// The shortest challenge (after `#CHALLENGE#`) that is answered; Python
/// 3.12+ refuses shorter ones too.
const MIN_CHALLENGE_LEN: usize = 20;

/// Lengths that mean "no digest prefix, legacy HMAC-MD5": a legacy
/// challenge is 20 bytes, a legacy response 16. No prefixed message of the
/// modern protocol has either length.
const LEGACY_LENS: [usize; 2] = [16, 20];

/// The longest digest name (`sha3_384`): the `}` of a prefix must come
/// within this many bytes after the `{`.
const MAX_DIGEST_NAME_LEN: usize = 8;

/// A hash the handshake may use for its HMAC (CPython's `_ALLOWED_DIGESTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha256,
    Sha384,
    Sha3_256,
    Sha3_384,
}

impl Digest {
    const ALL: [Digest; 5] =
        [Digest::Md5, Digest::Sha256, Digest::Sha384, Digest::Sha3_256, Digest::Sha3_384];

    /// The digest this side's challenges propose (CPython's default).
    const PROPOSED: Digest = Digest::Sha256;

    /// The name in a `{name}` prefix, as Python's `hashlib` spells it.
    fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha3_256 => "sha3_256",
            Digest::Sha3_384 => "sha3_384",
        }
    }

    fn from_name(name: &[u8]) -> Option<Digest> {
        Digest::ALL.into_iter().find(|digest| digest.name().as_bytes() == name)
    }

    /// The `{name}` prefix of a message that uses this digest.
    fn prefix(self) -> Vec<u8> {
        format!("{{{}}}", self.name()).into_bytes()
    }

    /// The length of this digest's HMAC.
    fn len(self) -> usize {
        match self {
            Digest::Md5 => 16,
            Digest::Sha256 | Digest::Sha3_256 => 32,
            Digest::Sha384 | Digest::Sha3_384 => 48,
        }
    }

    /// HMAC of `message` under `key` with this digest.
    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Digest::Md5 => keyed::<md5::Md5>(key, message).finalize().into_bytes().to_vec(),
            Digest::Sha256 => keyed::<sha2::Sha256>(key, message).finalize().into_bytes().to_vec(),
            Digest::Sha384 => keyed::<sha2::Sha384>(key, message).finalize().into_bytes().to_vec(),
            Digest::Sha3_256 => keyed::<sha3::Sha3_256>(key, message).finalize().into_bytes().to_vec(),
            Digest::Sha3_384 => keyed::<sha3::Sha3_384>(key, message).finalize().into_bytes().to_vec(),
        }
    }

    /// Whether `tag` is this digest's HMAC of `message` under `key`,
    /// compared in constant time.
    fn verify(self, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        match self {
            Digest::Md5 => keyed::<md5::Md5>(key, message).verify_slice(tag),
            Digest::Sha256 => keyed::<sha2::Sha256>(key, message).verify_slice(tag),
            Digest::Sha384 => keyed::<sha2::Sha384>(key, message).verify_slice(tag),
            Digest::Sha3_256 => keyed::<sha3::Sha3_256>(key, message).verify_slice(tag),
            Digest::Sha3_384 => keyed::<sha3::Sha3_384>(key, message).verify_slice(tag),
        }
        .is_ok()
    }
}

/// An HMAC with hash `D` under `key` that has taken in `message`.
fn keyed<D: hmac::digest::Digest + BlockSizeUser>(key: &[u8], message: &[u8]) -> SimpleHmac<D> {
    let mut mac = <SimpleHmac<D> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac
}

/// How a challenge or a response says which digest it uses (CPython's
/// `_get_digest_name_and_payload`).
#[derive(Debug, PartialEq, Eq)]
enum Form<'a> {
    /// 16 or 20 bytes without a prefix: legacy HMAC-MD5.
    Legacy,
    /// A `{name}` prefix naming an allowed digest, then `payload`.
    Prefixed { digest: Digest, payload: &'a [u8] },
    /// A `{name}` prefix naming a digest that is not allowed.
    Unsupported { name: &'a [u8] },
    /// Neither a legacy length nor a prefix.
    Unknown,
}

fn form(message: &[u8]) -> Form<'_> {
    if LEGACY_LENS.contains(&message.len()) {
        return Form::Legacy;
    }
    let Some(after_brace) = message.strip_prefix(b"{") else { return Form::Unknown };
    let window = &after_brace[..after_brace.len().min(MAX_DIGEST_NAME_LEN + 1)];
    let Some(end) = window.iter().position(|&b| b == b'}') else { return Form::Unknown };
    let (name, payload) = (&after_brace[..end], &after_brace[end + 1..]);
    match Digest::from_name(name) {
        Some(digest) => Form::Prefixed { digest, payload },
        None => Form::Unsupported { name },
    }
}

/// The random bytes and the frame of a challenge: `#CHALLENGE#` and its
/// message, `{sha256}` then the nonce. The response is checked against the
/// message, prefix included.
fn challenge(nonce: &[u8; NONCE_LEN]) -> (Vec<u8>, Vec<u8>) {
    let mut message = Digest::PROPOSED.prefix();
    message.extend_from_slice(nonce);
    let frame = [CHALLENGE, &message].concat();
    (message, frame)
}

/// The response to a challenge frame (CPython 3.12+'s `answer_challenge`
/// checks, then `_create_response`): a raw HMAC-MD5 for a legacy challenge,
/// else the challenge's `{name}` and the HMAC with that digest of the
/// whole message, prefix included.
fn respond(key: &[u8], frame: &[u8]) -> Result<Vec<u8>> {
    let Some(message) = frame.strip_prefix(CHALLENGE) else {
        return Err(auth(format!(
            "expected a challenge from the peer, got {}; does the peer use an authkey?",
            describe(frame)
        )));
    };
    if message.len() < MIN_CHALLENGE_LEN {
        return Err(auth(format!(
            "the peer's challenge is {} bytes long, shorter than the {MIN_CHALLENGE_LEN} bytes accepted",
            message.len()
        )));
    }
    match form(message) {
        Form::Legacy => Ok(Digest::Md5.mac(key, message)),
        Form::Prefixed { digest, .. } => {
            let mut response = digest.prefix();
            response.extend(digest.mac(key, message));
            Ok(response)
        }
        Form::Unsupported { name } => Err(auth(format!(
            "the peer's challenge asks for digest `{}`, which is not supported (supported: {})",
            name.escape_ascii(),
            supported()
        ))),
        Form::Unknown => Err(auth(format!(
            "the peer's {}-byte challenge names no digest and is not a legacy 20-byte one",
            message.len()
        ))),
    }
}

/// Checks the peer's `response` to this side's challenge `message` (CPython
/// 3.12+'s `_verify_challenge`): any allowed digest, or a raw 16-byte
/// HMAC-MD5 from a legacy peer; MD5 in either form only if `accept_md5`.
fn verify(key: &[u8], message: &[u8], response: &[u8], accept_md5: bool) -> Result<()> {
    let (digest, tag) = match form(response) {
        Form::Legacy => (Digest::Md5, response),
        Form::Prefixed { digest, payload } => (digest, payload),
        Form::Unsupported { name } => {
            return Err(auth(format!(
                "digest received was wrong: the peer answered with digest `{}`, which is not \
                 supported (supported: {})",
                name.escape_ascii(),
                supported()
            )));
        }
        Form::Unknown => {
            return Err(auth(format!(
                "digest received was wrong: the peer's {}-byte response names no digest; \
                 does the peer use an authkey?",
                response.len()
            )));
        }
    };
    if digest == Digest::Md5 && !accept_md5 {
        return Err(auth(
            "digest received was wrong: the peer answered with HMAC-MD5, which this side does not \
             accept (Python 3.11 and older answer with nothing else)"
                .to_owned(),
        ));
    }
    if tag.len() != digest.len() {
        return Err(auth(format!(
            "digest received was wrong: a {} digest is {} bytes long, the peer sent {}",
            digest.name(),
            digest.len(),
            tag.len()
        )));
    }
    if !digest.verify(key, message, tag) {
        return Err(auth("digest received was wrong; does the peer use the same authkey?".to_owned()));
    }
    Ok(())
}

/// The error for a verdict other than `#WELCOME#`.
fn rejected(verdict: &[u8]) -> Error {
    if verdict == FAILURE {
        auth("digest sent was rejected; does the peer use the same authkey?".to_owned())
    } else {
        auth(format!("digest sent was rejected: the peer's verdict was {}, not #WELCOME#", describe(verdict)))
    }
}

fn too_long(len: impl fmt::Display) -> Error {
    auth(format!(
        "the peer sent a {len}-byte message during the authentication handshake, over the limit of \
         {MAX_HANDSHAKE_FRAME} bytes; does the peer use an authkey?"
    ))
}

fn auth(message: String) -> Error {
    Error::Auth(message)
}

fn supported() -> String {
    Digest::ALL.map(Digest::name).join(", ")
}

/// A short, printable account of a frame for an error message.
fn describe(frame: &[u8]) -> String {
    const SHOWN: usize = 16;
    match frame.len() {
        0 => "an empty message".to_owned(),
        len if len <= SHOWN => format!("`{}`", frame.escape_ascii()),
        len => format!("a {len}-byte message starting `{}`", frame[..SHOWN].escape_ascii()),
    }
}

fn random_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    sys::random::fill(&mut nonce)?;
    Ok(nonce)
}

/// Which side of the handshake a [`Handshake`] plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The side that accepted the connection: challenges, then answers.
    Server,
    /// The side that connected: answers, then challenges.
    Client,
}

/// What a [`Handshake`] waits for.
#[derive(Debug)]
enum State {
    /// The peer's response to this side's challenge, whose message (after
    /// `#CHALLENGE#`) is `message`.
    Response { message: Vec<u8> },
    /// The peer's challenge.
    Challenge,
    /// The peer's verdict on this side's response.
    Verdict,
    /// Nothing: the handshake is over.
    Done,
}

/// One side of the authkey handshake, as a state machine that does no I/O:
/// it is fed each frame (payload) the peer sends and says which frames to
/// send back, until it reports the outcome. The server's machine comes with
/// its challenge, to send first; the client's sends nothing until the
/// challenge arrives. Each [`receive`](Handshake::receive) returns a
/// [`Step`]: frames to send (in order, before anything else), and the
/// outcome once there is one.
///
/// Every receive of the handshake must be capped at
/// [`MAX_HANDSHAKE_FRAME`] bytes; a longer frame that gets here anyway ends
/// the handshake with [`Error::Auth`]. No input makes it panic.
pub(crate) struct Handshake {
    key: Vec<u8>,
    role: Role,
    state: State,
    /// The random bytes of the client's challenge, drawn when it is sent
    /// unless given up front.
    client_nonce: Option<[u8; NONCE_LEN]>,
    /// Whether a response in HMAC-MD5 (raw or `{md5}`) is accepted.
    accept_md5: bool,
}

/// What a [`Handshake`] did with one received frame.
#[derive(Debug)]
#[must_use = "the frames in `send` must go to the peer"]
pub(crate) struct Step {
    /// Frames (payloads) to send to the peer now, in order. When the outcome
    /// is a failure they hold at most the `#FAILURE#` verdict, which is a
    /// courtesy to the peer.
    pub(crate) send: Vec<Vec<u8>>,
    /// `Some` once the handshake is over: `Ok` if both sides proved they
    /// hold the key, else [`Error::Auth`] saying why (or [`Error::Io`] if
    /// no random challenge could be drawn).
    pub(crate) outcome: Option<Result<()>>,
}

impl Step {
    fn go_on(frame: Vec<u8>) -> Step {
        Step { send: vec![frame], outcome: None }
    }

    fn over(send: Option<&[u8]>, outcome: Result<()>) -> Step {
        Step { send: send.into_iter().map(<[u8]>::to_vec).collect(), outcome: Some(outcome) }
    }
}

impl Handshake {
    /// The listener's side: challenges first, then answers. Returns the
    /// machine and its first frame, the challenge, to send right away.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no random bytes.
    pub(crate) fn server(key: &[u8]) -> Result<(Handshake, Vec<u8>)> {
        Ok(Handshake::server_with_nonce(key, random_nonce()?))
    }

    /// [`server`](Handshake::server) with the random bytes of its challenge
    /// given, for tests and fuzzing.
    pub(crate) fn server_with_nonce(key: &[u8], nonce: [u8; NONCE_LEN]) -> (Handshake, Vec<u8>) {
        let (message, frame) = challenge(&nonce);
        let handshake = Handshake {
            key: key.to_vec(),
            role: Role::Server,
            state: State::Response { message },
            client_nonce: None,
            accept_md5: true,
        };
        (handshake, frame)
    }

    /// The connecting side: answers the peer's challenge first, then
    /// challenges. Sends nothing before the peer's challenge arrives. Its
    /// own challenge's random bytes are drawn when it is sent; failing to
    /// draw them is an [`Error::Io`] outcome.
    pub(crate) fn client(key: &[u8]) -> Handshake {
        Handshake::new_client(key, None)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// [`client`](Handshake::client) with the random bytes of its challenge
    /// given, for tests and fuzzing.
    pub(crate) fn client_with_nonce(key: &[u8], nonce: [u8; NONCE_LEN]) -> Handshake {
        Handshake::new_client(key, Some(nonce))
    }

    fn new_client(key: &[u8], client_nonce: Option<[u8; NONCE_LEN]>) -> Handshake {
        Handshake {
            key: key.to_vec(),
            role: Role::Client,
            state: State::Challenge,
            client_nonce,
            accept_md5: true,
        }
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Whether a response to this side's challenge may use HMAC-MD5, raw
    /// (as Python 3.11 and older answer) or `{md5}`-prefixed. Yes by
    /// default, so that every CPython version can authenticate.
    pub(crate) fn accept_md5(mut self, accept: bool) -> Handshake {
        self.accept_md5 = accept;
        self
    }

    /// Feeds one received frame (its payload). Returns the frames to send
    /// now and, once the handshake is over, its outcome. A frame fed after
    /// the outcome is an [`Error::Auth`] outcome again.
    pub(crate) fn receive(&mut self, frame: &[u8]) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        if frame.len() > MAX_HANDSHAKE_FRAME && !matches!(state, State::Done) {
            return Step::over(None, Err(too_long(frame.len())));
        }
        match state {
            State::Response { message } => match verify(&self.key, &message, frame, self.accept_md5) {
                Err(e) => Step::over(Some(FAILURE), Err(e)),
                Ok(()) if self.role == Role::Client => Step::over(Some(WELCOME), Ok(())),
                Ok(()) => {
                    self.state = State::Challenge;
                    Step::go_on(WELCOME.to_vec())
                }
            },
            State::Challenge => match respond(&self.key, frame) {
                Ok(response) => {
                    self.state = State::Verdict;
                    Step::go_on(response)
                }
                Err(e) => Step::over(None, Err(e)),
            },
            State::Verdict if frame != WELCOME => Step::over(None, Err(rejected(frame))),
            State::Verdict if self.role == Role::Server => Step::over(None, Ok(())),
            State::Verdict => match self.client_nonce.take().map_or_else(random_nonce, Ok) {
                Ok(nonce) => {
                    let (message, frame) = challenge(&nonce);
                    self.state = State::Response { message };
                    Step::go_on(frame)
                }
                Err(e) => Step::over(None, Err(e)),
            },
            State::Done => {
                Step::over(None, Err(auth("a message arrived after the handshake was over".to_owned())))
            }
        }
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// True once the outcome has been reported.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("accept_md5", &self.accept_md5)
            .finish_non_exhaustive()
    }
}

/// Runs `handshake` to its end over `channel`, blocking: sends `first` (the
/// server's challenge) if there is one, then answers each frame the peer
/// sends. Every read waits until `deadline` at most and is capped at
/// [`MAX_HANDSHAKE_FRAME`] bytes; afterwards the channel accepts frames of
/// any length again.
///
/// # Errors
///
/// [`Error::Auth`] if the peer failed the handshake, turned this side away,
/// broke the protocol, sent a frame over the cap, closed the connection or
/// was still not done at `deadline`. [`Error::Io`] if the system failed.
pub(crate) fn run(
    channel: &Channel,
    handshake: Handshake,
    first: Option<Vec<u8>>,
    deadline: Instant,
) -> Result<()> {
    let allowed = deadline.saturating_duration_since(Instant::now());
    channel.reader().set_max_len(MAX_HANDSHAKE_FRAME);
    let outcome = drive(channel, handshake, first, deadline, allowed);
    channel.reader().set_max_len(usize::MAX);
    outcome
}

fn drive(
    channel: &Channel,
    mut handshake: Handshake,
    first: Option<Vec<u8>>,
    deadline: Instant,
    allowed: Duration,
) -> Result<()> {
    if let Some(frame) = first {
        channel.send(&frame, &[]).map_err(|e| broken(e, allowed))?;
    }
    loop {
        let frame = channel.recv(Some(deadline)).map_err(|e| broken(e, allowed))?;
        let Step { send, outcome } = handshake.receive(&frame.bytes);
        for reply in &send {
            if let Err(e) = channel.send(reply, &[]) {
                // Failing to send `#FAILURE#` matters less than why.
                return match outcome {
                    Some(Err(why)) => Err(why),
                    _ => Err(broken(e, allowed)),
                };
            }
        }
        if let Some(outcome) = outcome {
            return outcome;
        }
    }
}

/// What a failed send or receive means during the handshake. `allowed` is
/// the time the handshake had.
fn broken(e: Error, allowed: Duration) -> Error {
    match e {
        Error::Timeout => {
            // To the millisecond, so that 19.99998s reads as the 20s asked for.
            let allowed =
                Duration::from_millis(u64::try_from((allowed.as_micros() + 500) / 1000).unwrap_or(u64::MAX));
            auth(format!(
                "the peer did not complete the authentication handshake within {allowed:?}; does it use an \
                 authkey too?"
            ))
        }
        Error::Closed => {
            auth("the peer closed the connection during the authentication handshake".to_owned())
        }
        Error::MessageTooLong { len, .. } => too_long(len),
        Error::Io(e) if matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) => {
            auth(format!("the peer broke the authentication handshake: {e}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    use super::*;
    use crate::sys::socket::socketpair;

    const KEY: &[u8] = b"secret";

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    /// The bytes 0, 1, 2, ...: Python's `bytes(range(N))`.
    fn counting<const N: usize>() -> [u8; N] {
        std::array::from_fn(|i| i as u8)
    }

    fn challenge_frame(message: &[u8]) -> Vec<u8> {
        [CHALLENGE, message].concat()
    }

    /// The message of the modern test vectors: `{sha256}` + `bytes(range(40))`.
    fn modern_message() -> Vec<u8> {
        [b"{sha256}".as_slice(), &counting::<40>()].concat()
    }

    /// A server whose challenge carries the modern test vectors' message.
    fn vector_server(key: &[u8]) -> Handshake {
        Handshake::server_with_nonce(key, counting()).0
    }

    /// `{sha256}` + HMAC-SHA256(`b"secret"`, modern message), from CPython.
    fn vector_sha256_response() -> Vec<u8> {
        [b"{sha256}".as_slice(), &unhex("fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989")]
            .concat()
    }

    fn auth_message(outcome: Option<Result<()>>) -> String {
        match outcome {
            Some(Err(Error::Auth(message))) => message,
            other => panic!("expected an authentication failure, got {other:?}"),
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Side {
        Server,
        Client,
    }

    /// What went over the wire in an in-memory handshake, and how each
    /// side saw it end.
    struct Exchange {
        wire: Vec<(Side, Vec<u8>)>,
        server: Option<Result<()>>,
        client: Option<Result<()>>,
    }

    /// Drives `server` (whose challenge is `first`) and `client` against
    /// each other until neither has anything to send.
    fn exchange(mut server: Handshake, first: Vec<u8>, mut client: Handshake) -> Exchange {
        let mut wire = vec![(Side::Server, first)];
        let mut next = 0;
        let (mut server_outcome, mut client_outcome) = (None, None);
        while let Some((from, frame)) = wire.get(next).cloned() {
            next += 1;
            let (to, outcome, replier) = match from {
                Side::Server => (&mut client, &mut client_outcome, Side::Client),
                Side::Client => (&mut server, &mut server_outcome, Side::Server),
            };
            assert!(!to.is_done(), "a frame was sent to a side that is done: {frame:?}");
            let step = to.receive(&frame);
            wire.extend(step.send.into_iter().map(|reply| (replier, reply)));
            if step.outcome.is_some() {
                *outcome = step.outcome;
            }
            assert!(wire.len() <= 6, "a handshake is six frames at most: {:?}", wire);
        }
        Exchange { wire, server: server_outcome, client: client_outcome }
    }

    // The four test vectors of python-wire.md 4.6 (key `b"secret"` unless
    // said otherwise).

    #[test]
    fn vector_legacy_challenge_gets_a_raw_md5_response() {
        let mut client = Handshake::client_with_nonce(KEY, counting());
        let frame = challenge_frame(&counting::<20>());
        assert_eq!(frame.len(), 0x1f);
        let step = client.receive(&frame);
        assert_eq!(step.send, [unhex("7defa9cc46abc3583325d17ccda75190")]);
        assert!(step.outcome.is_none());
    }

    #[test]
    fn vector_modern_challenge_and_its_sha256_response() {
        let (mut server, first) = Handshake::server_with_nonce(KEY, counting());
        assert_eq!(first, challenge_frame(&modern_message()));
        assert_eq!(first.len(), 0x3b);
        let mut client = Handshake::client(KEY);
        let step = client.receive(&first);
        assert_eq!(step.send, [vector_sha256_response()]);
        let step = server.receive(&vector_sha256_response());
        assert_eq!(step.send, [WELCOME]);
        assert!(step.outcome.is_none());
    }

    #[test]
    fn vector_modern_message_answered_by_a_legacy_peer_is_accepted() {
        let step = vector_server(KEY).receive(&unhex("8e48d2bb349b4b72b9382999ed5b62eb"));
        assert_eq!(step.send, [WELCOME]);
        assert!(step.outcome.is_none());
    }

    #[test]
    fn vector_empty_key() {
        let expected = [
            b"{sha256}".as_slice(),
            &unhex("d18b190a737f779d3125c4a2dfddcebf933e2f2713bc92fbe386ca25df9fd7af"),
        ]
        .concat();
        let step = Handshake::client(b"").receive(&challenge_frame(&modern_message()));
        assert_eq!(step.send, std::slice::from_ref(&expected));
        let step = vector_server(b"").receive(&expected);
        assert_eq!(step.send, [WELCOME]);
        // The empty key is a key: another one does not pass.
        let step = vector_server(KEY).receive(&expected);
        assert_eq!(step.send, [FAILURE]);
    }

    #[test]
    fn equal_keys_authenticate_both_sides_in_six_frames() {
        for key in [KEY, b""] {
            let (server, first) = Handshake::server(key).unwrap();
            let done = exchange(server, first, Handshake::client(key));
            assert!(matches!(done.server, Some(Ok(()))), "{:?}", done.server);
            assert!(matches!(done.client, Some(Ok(()))), "{:?}", done.client);
            let senders: Vec<_> = done.wire.iter().map(|(side, _)| *side).collect();
            use Side::{Client as C, Server as S};
            assert_eq!(senders, [S, C, S, C, S, C]);
            assert_eq!(done.wire[2].1, WELCOME);
            assert!(done.wire[3].1.starts_with(b"#CHALLENGE#{sha256}"));
            assert_eq!(done.wire[3].1.len(), CHALLENGE.len() + 8 + NONCE_LEN);
            assert_eq!(done.wire[5].1, WELCOME);
        }
    }

    #[test]
    fn different_keys_fail_on_both_sides_and_the_server_says_failure() {
        let (server, first) = Handshake::server(KEY).unwrap();
        let done = exchange(server, first, Handshake::client(b"other"));
        assert!(auth_message(done.server).starts_with("digest received was wrong"));
        assert!(auth_message(done.client).starts_with("digest sent was rejected"));
        assert_eq!(done.wire.len(), 3);
        assert_eq!(done.wire[2], (Side::Server, FAILURE.to_vec()));
    }

    #[test]
    fn the_client_checks_the_server_too() {
        let mut client = Handshake::client_with_nonce(KEY, [7; NONCE_LEN]);
        let _ = client.receive(&challenge_frame(&modern_message()));
        let step = client.receive(WELCOME);
        assert_eq!(step.send.len(), 1);
        assert!(step.outcome.is_none());
        // A server that cannot answer the client's challenge.
        let step = client.receive(&vector_sha256_response());
        assert_eq!(step.send, [FAILURE]);
        assert!(auth_message(step.outcome).starts_with("digest received was wrong"));
        assert!(client.is_done());
    }

    #[test]
    fn a_legacy_20_byte_challenge_gets_a_16_byte_md5_reply() {
        let message = [0xa5u8; 20];
        let step = Handshake::client(KEY).receive(&challenge_frame(&message));
        assert_eq!(step.send, [Digest::Md5.mac(KEY, &message)]);
        assert_eq!(step.send[0].len(), 16);
        // Length decides before a prefix does (CPython does the same):
        // `{sha3_384}` + 10 bytes is 20 bytes, so legacy. From CPython, key `b"k"`.
        let message = [b"{sha3_384}".as_slice(), &[0; 10]].concat();
        let step = Handshake::client(b"k").receive(&challenge_frame(&message));
        assert_eq!(step.send, [unhex("0947f5c7e6923501cd05c04d32fef4cd")]);
    }

    #[test]
    fn each_allowed_digest_is_answered_in_kind() {
        // `_create_response(b"secret", b"{name}" + bytes(range(40)))`, from CPython.
        let vectors = [
            ("md5", "e8928e8cca3ace2d777017168dc6a0b2"),
            ("sha256", "fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989"),
            (
                "sha384",
                "bae78a3376369f7b803a8473318a9b7062495b47434159ac84fc92ddb33c51b2\
                 77c44c3edd9a5f9cb7d628f21abe2665",
            ),
            ("sha3_256", "82e8fa62f363295b6655abecf0e98e510224c559e9745af9741c357aec358f90"),
            (
                "sha3_384",
                "bfbe71d4e622f58ebf6cbe049af4c8fe518645b482915af0940d678c37c0b46d\
                 d1a2a448f9ee5141c91bba42b46a7862",
            ),
        ];
        for (name, mac) in vectors {
            let prefix = format!("{{{name}}}").into_bytes();
            let message = [prefix.as_slice(), &counting::<40>()].concat();
            let step = Handshake::client(KEY).receive(&challenge_frame(&message));
            assert_eq!(step.send, [[prefix.as_slice(), &unhex(mac)].concat()], "{name}");
        }
    }

    #[test]
    fn the_server_accepts_each_allowed_digest() {
        // `hmac.new(b"secret", b"{sha256}" + bytes(range(40)), name)`, from CPython.
        let vectors = [
            ("md5", "8e48d2bb349b4b72b9382999ed5b62eb"),
            ("sha256", "fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989"),
            (
                "sha384",
                "98030e6b3d09dd7eb5b7cf5f0a8c32b12ddb22d4d698e98b35f0f4690116fa5b\
                 cd125f45b2d89a7fc2f902c009a6f961",
            ),
            ("sha3_256", "4267b9809ac390ef0e6594601ec515dd8b6c2134c01fbdcd90fcc05750ec16ce"),
            (
                "sha3_384",
                "8f7c0b025ef0a88432bc2c75e9272002839245e5afc9d59271c99679e10afcd3\
                 bffa25c63dae3cfdeab6bcf4de17d2ac",
            ),
        ];
        for (name, mac) in vectors {
            let response = [format!("{{{name}}}").as_bytes(), &unhex(mac)].concat();
            let step = vector_server(KEY).receive(&response);
            assert_eq!(step.send, [WELCOME], "{name}");
            assert!(step.outcome.is_none(), "{name}");
            // One flipped bit is turned away.
            let mut forged = response.clone();
            *forged.last_mut().unwrap() ^= 1;
            let step = vector_server(KEY).receive(&forged);
            assert_eq!(step.send, [FAILURE], "{name}");
            assert!(auth_message(step.outcome).contains("same authkey"), "{name}");
        }
    }

    #[test]
    fn the_server_accepts_a_raw_md5_response_from_python_3_11() {
        let response = Digest::Md5.mac(KEY, &modern_message());
        let step = vector_server(KEY).receive(&response);
        assert_eq!(step.send, [WELCOME]);
    }

    #[test]
    fn a_server_refusing_md5_turns_away_both_md5_forms() {
        let raw = unhex("8e48d2bb349b4b72b9382999ed5b62eb");
        let prefixed = [b"{md5}".as_slice(), &raw].concat();
        for response in [raw, prefixed] {
            let step = vector_server(KEY).accept_md5(false).receive(&response);
            assert_eq!(step.send, [FAILURE]);
            assert!(auth_message(step.outcome).contains("HMAC-MD5"));
        }
        let step = vector_server(KEY).accept_md5(false).receive(&vector_sha256_response());
        assert_eq!(step.send, [WELCOME]);
    }

    #[test]
    fn the_server_rejects_a_20_byte_response() {
        let step = vector_server(KEY).receive(&[0u8; 20]);
        assert_eq!(step.send, [FAILURE]);
        assert!(auth_message(step.outcome).contains("md5 digest is 16 bytes long, the peer sent 20"));
    }

    #[test]
    fn the_server_rejects_sha1_and_unprefixed_responses() {
        let sha1 = [b"{sha1}".as_slice(), &[0u8; 20]].concat();
        let step = vector_server(KEY).receive(&sha1);
        assert_eq!(step.send, [FAILURE]);
        assert!(auth_message(step.outcome).contains("`sha1`"));
        for response in [&b""[..], b"hello", &[0u8; 32], b"{sha256", b"{sha256_and_more}0123456789"] {
            let step = vector_server(KEY).receive(response);
            assert_eq!(step.send, [FAILURE], "{response:?}");
            assert!(auth_message(step.outcome).starts_with("digest received was wrong"));
        }
    }

    #[test]
    fn the_answerer_rejects_a_sha1_challenge() {
        let message = [b"{sha1}".as_slice(), &[0u8; 40]].concat();
        let mut client = Handshake::client(KEY);
        let step = client.receive(&challenge_frame(&message));
        assert!(step.send.is_empty());
        let message = auth_message(step.outcome);
        assert!(message.contains("`sha1`") && message.contains("sha3_384"), "{message}");
        assert!(client.is_done());
    }

    #[test]
    fn the_answerer_rejects_a_frame_without_challenge() {
        let step = Handshake::client(KEY).receive(b"\x80\x04\x95hello pickle data");
        assert!(step.send.is_empty());
        let message = auth_message(step.outcome);
        assert!(message.starts_with("expected a challenge from the peer"), "{message}");
        assert!(message.contains(r"a 20-byte message starting `\x80\x04\x95hello pickle `"), "{message}");
    }

    #[test]
    fn the_answerer_rejects_short_and_unprefixed_challenges() {
        // Python 3.12+ refuses challenges under 20 bytes, 16-byte ones too.
        for message in [&b""[..], &[1u8; 16], &[1u8; 19], b"{sha256}0123456789"] {
            let step = Handshake::client(KEY).receive(&challenge_frame(message));
            assert!(step.send.is_empty());
            assert!(auth_message(step.outcome).contains("shorter than the 20 bytes"), "{message:?}");
        }
        let step = Handshake::client(KEY).receive(&challenge_frame(&[1u8; 21]));
        assert!(auth_message(step.outcome).contains("names no digest"));
    }

    #[test]
    fn a_frame_over_256_bytes_fails_the_handshake() {
        let long = challenge_frame(&[b"{sha256}".as_slice(), &[0u8; 300 - 19]].concat());
        assert_eq!(long.len(), 300);
        let mut client = Handshake::client(KEY);
        let step = client.receive(&long);
        assert!(step.send.is_empty());
        assert!(auth_message(step.outcome).contains("300-byte message"));
        assert!(client.is_done());
        let step = vector_server(KEY).receive(&[0u8; 300]);
        assert!(auth_message(step.outcome).contains("over the limit of 256 bytes"));
        // 256 bytes is still a frame to judge.
        let step = vector_server(KEY).receive(&[0u8; 256]);
        assert!(auth_message(step.outcome).starts_with("digest received was wrong"));
    }

    #[test]
    fn only_an_exact_welcome_is_a_welcome() {
        for verdict in [&b"#WELCOME#x"[..], b"#WELCOME", b"", b"#welcome#", FAILURE] {
            let mut client = Handshake::client(KEY);
            let _ = client.receive(&challenge_frame(&modern_message()));
            let step = client.receive(verdict);
            assert!(step.send.is_empty());
            let message = auth_message(step.outcome);
            assert!(message.starts_with("digest sent was rejected"), "{message}");
        }
        // The server's verdict on its own answer, too.
        let mut server = vector_server(KEY);
        let _ = server.receive(&vector_sha256_response());
        let _ = server.receive(&challenge_frame(&counting::<20>()));
        assert!(auth_message(server.receive(b"#WELCOME#x").outcome).contains("`#WELCOME#x`"));
    }

    #[test]
    fn a_frame_after_the_end_is_an_error_not_a_panic() {
        let mut server = vector_server(KEY);
        let _ = server.receive(b"wrong");
        assert!(server.is_done());
        let step = server.receive(&vector_sha256_response());
        assert!(step.send.is_empty());
        assert!(auth_message(step.outcome).contains("after the handshake was over"));
    }

    #[test]
    fn the_key_stays_out_of_debug_output() {
        let shown = format!("{:?}", Handshake::client(b"hunter2-key"));
        assert!(!shown.contains("hunter2") && !shown.contains("104, 117"), "{shown}");
    }

    /// A machine in one of the six states a handshake passes through.
    fn staged(stage: u64) -> Handshake {
        let mut server = vector_server(KEY);
        let mut client = Handshake::client_with_nonce(KEY, counting());
        match stage % 6 {
            0 => server,
            1 => {
                let _ = server.receive(&vector_sha256_response());
                server
            }
            2 => {
                let _ = server.receive(&vector_sha256_response());
                let _ = server.receive(&challenge_frame(&counting::<20>()));
                server
            }
            3 => client,
            4 => {
                let _ = client.receive(&challenge_frame(&modern_message()));
                client
            }
            _ => {
                let _ = client.receive(&challenge_frame(&modern_message()));
                let _ = client.receive(WELCOME);
                client
            }
        }
    }

    #[test]
    fn arbitrary_frames_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: [&[u8]; 9] =
            [CHALLENGE, WELCOME, FAILURE, b"{", b"}", b"{sha256}", b"{md5}", b"{sha3_384}", b"{sha1}"];
        for _ in 0..20_000 {
            let mut machine = staged(next());
            for _ in 0..1 + next() % 3 {
                let len = (next() % 300) as usize;
                let mut frame = Vec::new();
                while frame.len() < len {
                    match next() % 4 {
                        0 => frame.extend_from_slice(pieces[(next() % 9) as usize]),
                        _ => frame.push(next() as u8),
                    }
                }
                let step = machine.receive(&frame);
                assert!(step.send.len() <= 1);
                assert!(matches!(step.outcome, None | Some(Ok(())) | Some(Err(Error::Auth(_)))));
                assert_eq!(machine.is_done(), step.outcome.is_some());
            }
        }
    }

    // `run` over a real socket.

    fn channels() -> (Channel, Channel) {
        let (a, b) = socketpair().unwrap();
        (Channel::new(a, true), Channel::new(b, true))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// Runs a server with `server_key` and a client with `client_key` over
    /// a socketpair, the server in a thread of its own.
    fn run_both(server_key: &[u8], client_key: &[u8]) -> (Result<()>, Result<()>, Channel, Channel) {
        let (server_end, client_end) = channels();
        let server_key = server_key.to_vec();
        let server = thread::spawn(move || {
            let (handshake, challenge) = Handshake::server(&server_key).unwrap();
            let outcome = run(&server_end, handshake, Some(challenge), soon());
            (outcome, server_end)
        });
        let client = run(&client_end, Handshake::client(client_key), None, soon());
        let (server, server_end) = server.join().unwrap();
        (server, client, server_end, client_end)
    }

    #[test]
    fn run_authenticates_both_sides_and_lifts_the_cap() {
        let (server, client, server_end, client_end) = run_both(KEY, KEY);
        server.unwrap();
        client.unwrap();
        client_end.send(&[9u8; 1000], &[]).unwrap();
        assert_eq!(server_end.recv(Some(soon())).unwrap().bytes, [9u8; 1000]);
    }

    #[test]
    fn run_with_different_keys_fails_on_both_sides() {
        let (server, client, _, _) = run_both(KEY, b"other");
        assert!(
            matches!(&server, Err(Error::Auth(m)) if m.starts_with("digest received was wrong")),
            "{server:?}"
        );
        assert!(
            matches!(&client, Err(Error::Auth(m)) if m.starts_with("digest sent was rejected")),
            "{client:?}"
        );
    }

    #[test]
    fn run_gives_up_on_a_silent_peer_at_the_deadline() {
        let (ours, _silent) = channels();
        let start = Instant::now();
        let outcome = run(&ours, Handshake::client(KEY), None, start + Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(5));
        match outcome {
            Err(Error::Auth(m)) => assert!(m.contains("did not complete") && m.contains("100ms"), "{m}"),
            other => panic!("expected an authentication failure, got {other:?}"),
        }
        // The server side waits for the response the same way.
        let (ours, _silent) = channels();
        let (handshake, challenge) = Handshake::server(KEY).unwrap();
        let outcome = run(&ours, handshake, Some(challenge), Instant::now() + Duration::from_millis(50));
        assert!(matches!(&outcome, Err(Error::Auth(m)) if m.contains("did not complete")), "{outcome:?}");
    }

    #[test]
    fn run_fails_when_the_peer_closes() {
        let (ours, peer) = channels();
        drop(peer);
        let outcome = run(&ours, Handshake::client(KEY), None, soon());
        assert!(
            matches!(&outcome, Err(Error::Auth(m)) if m.contains("closed the connection")),
            "{outcome:?}"
        );
    }

    #[test]
    fn run_refuses_an_oversized_frame_without_reading_it_whole() {
        let (ours, peer) = channels();
        peer.send(&[0u8; 1000], &[]).unwrap();
        let outcome = run(&ours, Handshake::client(KEY), None, soon());
        assert!(matches!(&outcome, Err(Error::Auth(m)) if m.contains("1000-byte message")), "{outcome:?}");
    }

    // Against CPython's own `deliver_challenge` and `answer_challenge`.

    /// Connects to the Unix socket `argv[1]` and plays `argv[2]` (`server`:
    /// challenge first; `client`: answer first) with the hex key `argv[3]`.
    /// Exit status 3 is an `AuthenticationError`.
    const PYTHON_SIDE: &str = r#"
import sys
from multiprocessing.connection import (
    AuthenticationError, Client, answer_challenge, deliver_challenge)
path, role, key = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
conn = Client(path)  # no authkey: the handshake below is the test
try:
    if role == "server":
        deliver_challenge(conn, key)
        answer_challenge(conn, key)
    else:
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
except AuthenticationError as e:
    print("AuthenticationError:", e)
    sys.exit(3)
print("authenticated")
"#;

    /// A directory of its own under the system's temporary directory,
    /// removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let name =
                format!("multiproc-auth-{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// How the Python side ended.
    #[derive(Debug)]
    struct PythonSide {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    }

    /// Runs `ours` (with `first` to send first) against `python3` playing
    /// `python_role` with `python_key`, over a Unix socket. Everything is
    /// bounded by 20 s; a Python that overruns is killed.
    fn against_python(
        python_role: &str,
        python_key: &[u8],
        ours: Handshake,
        first: Option<Vec<u8>>,
    ) -> (Result<()>, PythonSide) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let dir = TempDir::new();
        let path = dir.0.join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let key: String = python_key.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = Command::new("python3")
            .args(["-c", PYTHON_SIDE])
            .arg(&path)
            .args([python_role, &key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 must be on PATH for the interoperability tests");
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                        panic!("python3 did not connect: {:?}", finish(child, Instant::now()));
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept failed: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        let channel = Channel::new(OwnedFd::from(stream), true);
        let outcome = run(&channel, ours, first, deadline);
        drop(channel);
        (outcome, finish(child, deadline))
    }

    /// Waits for `child` until `deadline`, then kills it.
    fn finish(mut child: Child, deadline: Instant) -> PythonSide {
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
        }
        let output = child.wait_with_output().unwrap();
        PythonSide {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn python_authenticated(python: &PythonSide) -> bool {
        python.status.success() && python.stdout.trim() == "authenticated" && python.stderr.is_empty()
    }

    fn python_refused(python: &PythonSide, why: &str) -> bool {
        python.status.code() == Some(3) && python.stdout.contains(why) && python.stderr.is_empty()
    }

    #[test]
    fn python_client_authenticates_to_our_server() {
        for key in [KEY, b""] {
            let (server, challenge) = Handshake::server(key).unwrap();
            let (ours, python) = against_python("client", key, server, Some(challenge));
            assert!(ours.is_ok(), "ours: {ours:?}, python: {python:?}");
            assert!(python_authenticated(&python), "{python:?}");
        }
    }

    #[test]
    fn python_client_with_another_key_is_turned_away_by_our_server() {
        let (server, challenge) = Handshake::server(KEY).unwrap();
        let (ours, python) = against_python("client", b"other", server, Some(challenge));
        assert!(
            matches!(&ours, Err(Error::Auth(m)) if m.starts_with("digest received was wrong")),
            "ours: {ours:?}, python: {python:?}"
        );
        assert!(python_refused(&python, "digest sent was rejected"), "{python:?}");
    }

    #[test]
    fn our_client_authenticates_to_a_python_server() {
        let (ours, python) = against_python("server", KEY, Handshake::client(KEY), None);
        assert!(ours.is_ok(), "ours: {ours:?}, python: {python:?}");
        assert!(python_authenticated(&python), "{python:?}");
    }

    #[test]
    fn our_client_with_another_key_is_turned_away_by_a_python_server() {
        let (ours, python) = against_python("server", b"other", Handshake::client(KEY), None);
        assert!(
            matches!(&ours, Err(Error::Auth(m)) if m.starts_with("digest sent was rejected")),
            "ours: {ours:?}, python: {python:?}"
        );
        assert!(python_refused(&python, "digest received was wrong"), "{python:?}");
    }
}
