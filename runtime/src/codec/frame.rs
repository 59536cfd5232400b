//! CPython's message framing: a 4-byte big-endian signed length, or `-1`
//! followed by an 8-byte big-endian length for messages over 2 GiB, then the
//! payload. fds ride on the first write of a frame.

use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd};

use std::time::Instant;

use super::Encoded;
use crate::sys::poll::wait_readable;
use crate::sys::socket::{recv_with_fds, send_vectored_with_fds};

/// Payload lengths above this use the 8-byte form.
const SHORT_MAX: usize = 0x7fff_ffff;

/// The payload buffer grows by at most this much per read, so a peer that
/// claims a huge length and sends little costs little memory.
const GROWTH_STEP: usize = 16 << 20;

/// Writes one frame: header, payload, and `fds` attached to the first byte.
pub(crate) fn write_frame(sock: BorrowedFd<'_>, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut header = [0u8; 12];
    let header: &[u8] = if payload.len() <= SHORT_MAX {
        header[..4].copy_from_slice(&(payload.len() as i32).to_be_bytes());
        &header[..4]
    } else {
        header[..4].copy_from_slice(&(-1i32).to_be_bytes());
        header[4..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
        &header[..]
    };
    let total = header.len() + payload.len();
    let mut sent = send_vectored_with_fds(sock, &[IoSlice::new(header), IoSlice::new(payload)], fds)?;
    while sent < total {
        let rest: [IoSlice<'_>; 2] = if sent < header.len() {
            [IoSlice::new(&header[sent..]), IoSlice::new(payload)]
        } else {
            [IoSlice::new(&payload[sent - header.len()..]), IoSlice::new(&[])]
        };
        let n = send_vectored_with_fds(sock, &rest, &[])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

/// What one call to [`FrameReader::read`] found.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// A whole frame, with the fds that came with it.
    Frame(Encoded),
    /// Non-blocking read and no whole frame yet; what arrived is kept.
    WouldBlock,
    /// End of file on a frame boundary: the peer closed cleanly.
    Eof,
}

/// Reads frames from a stream socket, one at a time, never reading past the
/// end of the current frame (so the socket can be handed on between
/// frames). A read that would block keeps what it has and resumes later.
#[derive(Debug)]
pub(crate) struct FrameReader {
    header: [u8; 12],
    header_len: usize,
    /// The payload length, once the header is complete.
    expected: Option<usize>,
    payload: Vec<u8>,
    filled: usize,
    fds: Vec<OwnedFd>,
    max_len: usize,
    /// Bytes of a refused (too long) frame still to be thrown away.
    skip: usize,
}

impl FrameReader {
    /// A reader that refuses payloads longer than `max_len`.
    pub(crate) fn new(max_len: usize) -> Self {
        FrameReader {
            header: [0; 12],
            header_len: 0,
            expected: None,
            payload: Vec::new(),
            filled: 0,
            fds: Vec::new(),
            max_len,
            skip: 0,
        }
    }

    /// Sets the longest payload the next frames may have.
    pub(crate) fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// True if part of a frame has been read and not handed out.
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.header_len > 0 || self.skip > 0
    }

    /// Reads until one whole frame is in. Blocks unless `nonblocking`.
    ///
    /// Errors: `UnexpectedEof` when the peer closed inside a frame,
    /// `InvalidData` for a malformed header or a payload over the limit
    /// (that payload is then skipped, so the next frame reads cleanly).
    pub(crate) fn read(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<ReadOutcome> {
        while self.skip > 0 {
            let mut scratch = [0u8; 8192];
            let want = self.skip.min(scratch.len());
            match self.recv(sock, &mut scratch[..want], nonblocking)? {
                Some(0) => return Err(eof_in_frame()),
                Some(n) => self.skip -= n,
                None => return Ok(ReadOutcome::WouldBlock),
            }
        }
        loop {
            let Some(expected) = self.expected else {
                let need = if self.header_len >= 4 && self.header[..4] == [0xff; 4] { 12 } else { 4 };
                if self.header_len < need {
                    let mut header = self.header;
                    let got = self.recv(sock, &mut header[self.header_len..need], nonblocking)?;
                    self.header = header;
                    match got {
                        Some(0) if self.header_len == 0 => return Ok(ReadOutcome::Eof),
                        Some(0) => return Err(eof_in_frame()),
                        Some(n) => self.header_len += n,
                        None => return Ok(ReadOutcome::WouldBlock),
                    }
                    continue;
                }
                let len = self.parse_header()?;
                if len > self.max_len {
                    self.skip = len;
                    self.header_len = 0;
                    self.fds.clear();
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        FrameTooLong { len, max: self.max_len },
                    ));
                }
                self.expected = Some(len);
                self.payload = Vec::with_capacity(len.min(GROWTH_STEP));
                self.filled = 0;
                continue;
            };
            if self.filled == expected {
                let frame =
                    Encoded { bytes: std::mem::take(&mut self.payload), fds: std::mem::take(&mut self.fds) };
                self.header_len = 0;
                self.expected = None;
                self.filled = 0;
                return Ok(ReadOutcome::Frame(frame));
            }
            if self.payload.len() == self.filled {
                let grow = (expected - self.filled).min(GROWTH_STEP);
                self.payload.resize(self.filled + grow, 0);
            }
            let mut payload = std::mem::take(&mut self.payload);
            let got = self.recv(sock, &mut payload[self.filled..], nonblocking);
            self.payload = payload;
            match got? {
                Some(0) => return Err(eof_in_frame()),
                Some(n) => self.filled += n,
                None => return Ok(ReadOutcome::WouldBlock),
            }
        }
    }

    /// Reads one whole frame, waiting until `deadline` at most. `Ok(None)`
    /// is end of file on a frame boundary; running out of time is a
    /// `TimedOut` error (what arrived so far is kept).
    pub(crate) fn read_before(
        &mut self,
        sock: BorrowedFd<'_>,
        deadline: Instant,
    ) -> io::Result<Option<Encoded>> {
        loop {
            match self.read(sock, true)? {
                ReadOutcome::Frame(frame) => return Ok(Some(frame)),
                ReadOutcome::Eof => return Ok(None),
                ReadOutcome::WouldBlock => {
                    let [ready] = wait_readable([sock], Some(deadline))?;
                    if !ready {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no message arrived in time"));
                    }
                }
            }
        }
    }

    fn parse_header(&self) -> io::Result<usize> {
        let short = i32::from_be_bytes(self.header[..4].try_into().expect("4 bytes"));
        match short {
            0.. => Ok(short as usize),
            -1 => {
                let long = u64::from_be_bytes(self.header[4..12].try_into().expect("8 bytes"));
                usize::try_from(long).map_err(|_| bad_header(long as i128))
            }
            _ => Err(bad_header(short as i128)),
        }
    }

    /// One `recv`: `Some(n)` bytes (0 = end of file), or `None` if it would
    /// block. fds that arrive are kept for the current frame.
    fn recv(&mut self, sock: BorrowedFd<'_>, buf: &mut [u8], nonblocking: bool) -> io::Result<Option<usize>> {
        match recv_with_fds(sock, buf, &mut self.fds, nonblocking) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A frame refused for its length: the `InvalidData` error's inner error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTooLong {
    pub(crate) len: usize,
    pub(crate) max: usize,
}

impl std::fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a message of {} bytes is over the limit of {} bytes", self.len, self.max)
    }
}

impl std::error::Error for FrameTooLong {}

fn eof_in_frame() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "got end of file during message")
}

fn bad_header(len: i128) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad message length {len} in frame header"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::socket::socketpair;
    use std::os::fd::AsFd;

    fn read_one(reader: &mut FrameReader, sock: BorrowedFd<'_>) -> io::Result<ReadOutcome> {
        reader.read(sock, true)
    }

    #[test]
    fn frames_keep_their_boundaries() {
        let (a, b) = socketpair().unwrap();
        for msg in [&b"hello"[..], b"", b"a", b"b", b"", b"bye"] {
            write_frame(a.as_fd(), msg, &[]).unwrap();
        }
        let mut r = FrameReader::new(1 << 20);
        for msg in [&b"hello"[..], b"", b"a", b"b", b"", b"bye"] {
            match read_one(&mut r, b.as_fd()).unwrap() {
                ReadOutcome::Frame(f) => assert_eq!(f.bytes, msg),
                other => panic!("expected a frame, got {other:?}"),
            }
        }
        assert!(matches!(read_one(&mut r, b.as_fd()).unwrap(), ReadOutcome::WouldBlock));
        drop(a);
        assert!(matches!(read_one(&mut r, b.as_fd()).unwrap(), ReadOutcome::Eof));
    }

    #[test]
    fn the_wire_matches_cpython() {
        let (a, b) = socketpair().unwrap();
        write_frame(a.as_fd(), b"hi", &[]).unwrap();
        let mut raw = [0u8; 6];
        let n = recv_with_fds(b.as_fd(), &mut raw, &mut Vec::new(), true).unwrap();
        assert_eq!(&raw[..n], &[0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn the_long_header_form_is_accepted_for_any_length() {
        let (a, b) = socketpair().unwrap();
        let wire = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'];
        send_vectored_with_fds(a.as_fd(), &[IoSlice::new(&wire)], &[]).unwrap();
        match FrameReader::new(16).read(b.as_fd(), true).unwrap() {
            ReadOutcome::Frame(f) => assert_eq!(f.bytes, b"abc"),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn negative_lengths_are_refused() {
        let (a, b) = socketpair().unwrap();
        send_vectored_with_fds(a.as_fd(), &[IoSlice::new(&(-2i32).to_be_bytes())], &[]).unwrap();
        let err = FrameReader::new(16).read(b.as_fd(), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn an_oversized_frame_is_skipped_and_the_stream_stays_framed() {
        let (a, b) = socketpair().unwrap();
        write_frame(a.as_fd(), &[7u8; 100], &[]).unwrap();
        write_frame(a.as_fd(), b"next", &[]).unwrap();
        let mut r = FrameReader::new(10);
        let err = r.read(b.as_fd(), true).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        match r.read(b.as_fd(), true).unwrap() {
            ReadOutcome::Frame(f) => assert_eq!(f.bytes, b"next"),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn eof_inside_a_frame_is_distinct_from_eof_between_frames() {
        let (a, b) = socketpair().unwrap();
        send_vectored_with_fds(a.as_fd(), &[IoSlice::new(&[0, 0, 0, 9, 1, 2])], &[]).unwrap();
        drop(a);
        let err = FrameReader::new(16).read(b.as_fd(), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_claimed_length_is_not_allocated_up_front() {
        let (a, b) = socketpair().unwrap();
        send_vectored_with_fds(a.as_fd(), &[IoSlice::new(&(i32::MAX).to_be_bytes())], &[]).unwrap();
        let mut r = FrameReader::new(usize::MAX);
        assert!(matches!(r.read(b.as_fd(), true).unwrap(), ReadOutcome::WouldBlock));
        assert!(r.payload.capacity() <= GROWTH_STEP);
        assert!(r.is_mid_frame());
    }

    #[test]
    fn fds_arrive_with_their_frame() {
        let (a, b) = socketpair().unwrap();
        let (x, _y) = socketpair().unwrap();
        write_frame(a.as_fd(), b"one", &[]).unwrap();
        write_frame(a.as_fd(), b"two", &[x.as_fd()]).unwrap();
        let mut r = FrameReader::new(64);
        match r.read(b.as_fd(), true).unwrap() {
            ReadOutcome::Frame(f) => assert_eq!((f.bytes.as_slice(), f.fds.len()), (&b"one"[..], 0)),
            other => panic!("{other:?}"),
        }
        match r.read(b.as_fd(), true).unwrap() {
            ReadOutcome::Frame(f) => assert_eq!((f.bytes.as_slice(), f.fds.len()), (&b"two"[..], 1)),
            other => panic!("{other:?}"),
        }
    }
}
