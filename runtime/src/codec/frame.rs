//! CPython's message framing: a 4-byte big-endian signed length, or `-1`
//! followed by an 8-byte big-endian length for messages over 2 GiB, then the
//! payload. fds ride on the first write of a frame.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use std::time::Instant;

use super::Encoded;
use crate::sys::poll::wait_readable;
use crate::sys::socket::{recv_append, recv_with_fds, send_vectored_with_fds};

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

/// Writes several frames, without fds, in as few system calls as the
/// socket takes. Each payload is given in two parts (a header and a body,
/// say), written one after the other with no copy.
pub(crate) fn write_frames(sock: BorrowedFd<'_>, payloads: &[[&[u8]; 2]]) -> io::Result<()> {
    let lens: Vec<usize> = payloads.iter().map(|[a, b]| a.len() + b.len()).collect();
    if lens.iter().any(|&len| len > SHORT_MAX) {
        return payloads.iter().try_for_each(|[a, b]| write_frame(sock, &[*a, *b].concat(), &[]));
    }
    let headers: Vec<[u8; 4]> = lens.iter().map(|&len| (len as i32).to_be_bytes()).collect();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(3 * payloads.len());
    for (header, [a, b]) in headers.iter().zip(payloads) {
        parts.extend([&header[..], a, b]);
    }
    // Linux takes at most 1024 iovecs per call.
    for group in parts.chunks(1024) {
        let total: usize = group.iter().map(|p| p.len()).sum();
        let mut sent = 0;
        while sent < total {
            let mut skip = sent;
            let rest: Vec<IoSlice<'_>> = group
                .iter()
                .filter_map(|p| {
                    if skip >= p.len() {
                        skip -= p.len();
                        None
                    } else {
                        let slice = IoSlice::new(&p[skip..]);
                        skip = 0;
                        Some(slice)
                    }
                })
                .collect();
            let n = send_vectored_with_fds(sock, &rest, &[])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += n;
        }
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

/// What [`FrameReader::read_into`] found.
#[derive(Debug)]
pub(crate) enum IntoOutcome {
    /// A frame of this length is in the caller's buffer; these fds came
    /// with it.
    Read(usize, Vec<OwnedFd>),
    /// The frame did not fit the caller's buffer: here it is whole.
    TooLong(Encoded),
    /// End of file on a frame boundary.
    Eof,
}

/// A frame whose payload is longer than what was buffered, being read
/// straight into its own buffer.
#[derive(Debug)]
struct Partial {
    /// The stream offset of the frame's header.
    offset: u64,
    expected: usize,
    payload: Vec<u8>,
}

/// Reads frames from a stream socket.
///
/// An exact reader ([`new`](FrameReader::new)) never reads past the end of
/// the current frame, so the socket can be handed on between frames: it
/// makes two `recvmsg` calls per frame, one for the header and one for the
/// payload. A read-ahead reader ([`read_ahead`](FrameReader::read_ahead))
/// asks for up to 64 KiB at once, so small frames usually take one call
/// between them; what it holds of later frames is handed on with the
/// connection ([`pending`](FrameReader::pending)).
///
/// fds ride on the first `sendmsg` of a frame, and the kernel ends a
/// `recvmsg` right after the bytes that carried fds, so the fds a receive
/// brings belong to the last frame that starts within the bytes it got.
///
/// A read that would block keeps what it has and resumes later.
#[derive(Debug)]
pub(crate) struct FrameReader {
    /// Received bytes not handed out yet: `buf[start..]`, beginning with
    /// the header of the next frame, unless `partial` or `skip` is set.
    buf: Vec<u8>,
    start: usize,
    /// The stream offset of `buf[0]`.
    base: u64,
    /// fds that came in, by the stream offset of their frame's header.
    fds: Vec<(u64, Vec<OwnedFd>)>,
    partial: Option<Partial>,
    /// Bytes of a refused (too long) frame still to be thrown away.
    skip: usize,
    max_len: usize,
    read_ahead: bool,
}

/// How many bytes a read-ahead reader asks for at once.
const AHEAD: usize = 64 << 10;

impl FrameReader {
    /// An exact reader that refuses payloads longer than `max_len`.
    pub(crate) fn new(max_len: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            base: 0,
            fds: Vec::new(),
            partial: None,
            skip: 0,
            max_len,
            read_ahead: false,
        }
    }

    /// A reader that reads ahead, refusing payloads longer than `max_len`.
    pub(crate) fn read_ahead(max_len: usize) -> Self {
        FrameReader { read_ahead: true, ..FrameReader::new(max_len) }
    }

    /// A read-ahead reader that starts with `bytes` already received, and
    /// `fds` that came with the frames starting at the given offsets into
    /// `bytes`: what [`pending`](FrameReader::pending) gave another process.
    pub(crate) fn resume(max_len: usize, bytes: Vec<u8>, fds: Vec<(u64, Vec<OwnedFd>)>) -> Self {
        FrameReader { buf: bytes, fds, ..FrameReader::read_ahead(max_len) }
    }

    /// Sets the longest payload the next frames may have.
    pub(crate) fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// True if part of a frame is being read into its own buffer, or
    /// thrown away: a state that cannot be handed on.
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.partial.is_some() || self.skip > 0
    }

    /// Bytes received and not handed out, with the fds of the frames among
    /// them (by offset into the bytes), for handing the socket on. Only
    /// meaningful when not [`is_mid_frame`](FrameReader::is_mid_frame).
    pub(crate) fn pending(&self) -> (&[u8], Vec<(u64, Vec<BorrowedFd<'_>>)>) {
        let at = self.offset();
        let fds = self
            .fds
            .iter()
            .filter(|(offset, _)| *offset >= at)
            .map(|(offset, fds)| (offset - at, fds.iter().map(AsFd::as_fd).collect()))
            .collect();
        (&self.buf[self.start..], fds)
    }

    /// True if a whole frame has been received and not handed out, so
    /// that reading it needs no system call.
    pub(crate) fn has_frame(&self) -> bool {
        if self.partial.is_some() || self.skip > 0 {
            return false;
        }
        let rest = &self.buf[self.start..];
        match parse_header(rest) {
            Ok(Some((header, len))) => header.checked_add(len).is_some_and(|end| end <= rest.len()),
            // A bad header is an error for the next read to report at once.
            Err(_) => true,
            Ok(None) => false,
        }
    }

    /// Reads until one whole frame is in. Blocks unless `nonblocking`.
    ///
    /// Errors: `UnexpectedEof` when the peer closed inside a frame,
    /// `InvalidData` for a malformed header or a payload over the limit
    /// (that payload is then skipped, so the next frame reads cleanly).
    pub(crate) fn read(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<ReadOutcome> {
        loop {
            if !self.discard(sock, nonblocking)? {
                return Ok(ReadOutcome::WouldBlock);
            }
            if let Some(p) = &mut self.partial {
                if p.payload.len() == p.expected {
                    let p = self.partial.take().expect("a partial frame");
                    let fds = self.take_fds(p.offset);
                    return Ok(ReadOutcome::Frame(Encoded { bytes: p.payload, fds }));
                }
                let want = (p.expected - p.payload.len()).min(GROWTH_STEP);
                let mut fds = Vec::new();
                let got = recv_append(sock, &mut p.payload, want, &mut fds, nonblocking);
                let offset = p.offset;
                self.add_fds(offset, fds);
                match would_block(got)? {
                    Some(0) => return Err(eof_in_frame()),
                    Some(_) => continue,
                    None => return Ok(ReadOutcome::WouldBlock),
                }
            }
            let Some((header, len)) = self.header()? else {
                match self.fill(sock, nonblocking)? {
                    Some(0) if self.buffered() == 0 => return Ok(ReadOutcome::Eof),
                    Some(0) => return Err(eof_in_frame()),
                    Some(_) => continue,
                    None => return Ok(ReadOutcome::WouldBlock),
                }
            };
            let offset = self.offset();
            let have = self.buffered() - header;
            if have >= len {
                let at = self.start + header;
                let bytes = self.buf[at..at + len].to_vec();
                self.consume(header + len);
                return Ok(ReadOutcome::Frame(Encoded { bytes, fds: self.take_fds(offset) }));
            }
            let mut payload = Vec::with_capacity(len.min(GROWTH_STEP).max(have));
            payload.extend_from_slice(&self.buf[self.start + header..]);
            self.consume(header + have);
            self.partial = Some(Partial { offset, expected: len, payload });
        }
    }

    /// Reads one frame, waiting for it, into `dest` if it fits: straight
    /// from the socket, with no buffer in between.
    pub(crate) fn read_into(&mut self, sock: BorrowedFd<'_>, dest: &mut [u8]) -> io::Result<IntoOutcome> {
        if self.is_mid_frame() {
            return self.read_into_via_buffer(sock, dest);
        }
        let (header, len) = loop {
            if let Some(found) = self.header()? {
                break found;
            }
            match self.fill(sock, false)? {
                Some(0) if self.buffered() == 0 => return Ok(IntoOutcome::Eof),
                Some(0) => return Err(eof_in_frame()),
                _ => {}
            }
        };
        if len > dest.len() {
            return self.read_into_via_buffer(sock, dest);
        }
        let offset = self.offset();
        let have = (self.buffered() - header).min(len);
        let at = self.start + header;
        dest[..have].copy_from_slice(&self.buf[at..at + have]);
        self.consume(header + have);
        let mut fds = self.take_fds(offset);
        let mut filled = have;
        while filled < len {
            match recv_with_fds(sock, &mut dest[filled..len], &mut fds, false)? {
                0 => return Err(eof_in_frame()),
                n => filled += n,
            }
        }
        Ok(IntoOutcome::Read(len, fds))
    }

    fn read_into_via_buffer(&mut self, sock: BorrowedFd<'_>, dest: &mut [u8]) -> io::Result<IntoOutcome> {
        Ok(match self.read(sock, false)? {
            ReadOutcome::Frame(frame) => match dest.get_mut(..frame.bytes.len()) {
                Some(dest) => {
                    dest.copy_from_slice(&frame.bytes);
                    IntoOutcome::Read(frame.bytes.len(), frame.fds)
                }
                None => IntoOutcome::TooLong(frame),
            },
            ReadOutcome::Eof => IntoOutcome::Eof,
            ReadOutcome::WouldBlock => unreachable!("a blocking read does not return WouldBlock"),
        })
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

    /// Throws away what is left of a refused frame. False if that would
    /// block.
    fn discard(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<bool> {
        if self.skip == 0 {
            return Ok(true);
        }
        let n = self.skip.min(self.buffered());
        self.consume(n);
        self.skip -= n;
        while self.skip > 0 {
            let mut scratch = [0u8; 8192];
            let want = self.skip.min(scratch.len());
            match would_block(recv_with_fds(sock, &mut scratch[..want], &mut Vec::new(), nonblocking))? {
                Some(0) => return Err(eof_in_frame()),
                Some(n) => {
                    self.skip -= n;
                    self.base += n as u64;
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The next frame's header length and payload length, if its header is
    /// in. A length over the limit is refused here, and the frame is then
    /// skipped.
    fn header(&mut self) -> io::Result<Option<(usize, usize)>> {
        let Some((header, len)) = parse_header(&self.buf[self.start..])? else {
            return Ok(None);
        };
        if len > self.max_len {
            let offset = self.offset();
            self.consume(header);
            self.skip = len;
            self.fds.retain(|(at, _)| *at != offset);
            return Err(io::Error::new(io::ErrorKind::InvalidData, FrameTooLong { len, max: self.max_len }));
        }
        Ok(Some((header, len)))
    }

    /// One receive into the buffer: as much as there is, up to 64 KiB,
    /// when reading ahead; else only what the header still needs.
    /// `Some(n)` bytes (0 = end of file), or `None` if it would block.
    fn fill(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Option<usize>> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        let buffered = self.buf.len();
        let want = if self.read_ahead {
            AHEAD.saturating_sub(buffered).max(12)
        } else if buffered >= 4 && self.buf[..4] == [0xff; 4] {
            12 - buffered
        } else {
            4 - buffered
        };
        let mut fds = Vec::new();
        let got = would_block(recv_append(sock, &mut self.buf, want, &mut fds, nonblocking))?;
        if !fds.is_empty() {
            let at = self.last_frame_start();
            self.add_fds(at, fds);
        }
        Ok(got)
    }

    /// The stream offset of the last frame that starts in the buffer.
    fn last_frame_start(&self) -> u64 {
        let mut at = self.start;
        while let Ok(Some((header, len))) = parse_header(&self.buf[at..]) {
            match at.checked_add(header).and_then(|a| a.checked_add(len)) {
                Some(next) if next < self.buf.len() => at = next,
                _ => break,
            }
        }
        self.base + at as u64
    }

    /// The stream offset of the next byte to hand out.
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.base += self.start as u64;
            self.buf.clear();
            self.start = 0;
        }
    }

    fn add_fds(&mut self, offset: u64, fds: Vec<OwnedFd>) {
        if fds.is_empty() {
            return;
        }
        match self.fds.iter_mut().find(|(at, _)| *at == offset) {
            Some((_, those)) => those.extend(fds),
            None => self.fds.push((offset, fds)),
        }
    }

    /// The fds of the frame at `offset`; those of earlier frames, which
    /// were refused, are closed.
    fn take_fds(&mut self, offset: u64) -> Vec<OwnedFd> {
        if self.fds.is_empty() {
            return Vec::new();
        }
        let mut taken = Vec::new();
        self.fds.retain_mut(|(at, fds)| {
            if *at == offset {
                taken.append(fds);
            }
            *at > offset
        });
        taken
    }
}

/// A header's length and the payload length it gives, if the header is
/// whole in `bytes`.
fn parse_header(bytes: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let Some(short) = bytes.first_chunk::<4>() else {
        return Ok(None);
    };
    match i32::from_be_bytes(*short) {
        short @ 0.. => Ok(Some((4, short as usize))),
        -1 => {
            let Some(long) = bytes.get(4..12) else {
                return Ok(None);
            };
            let long = u64::from_be_bytes(long.try_into().expect("8 bytes"));
            usize::try_from(long).map(|len| Some((12, len))).map_err(|_| bad_header(long as i128))
        }
        short => Err(bad_header(short as i128)),
    }
}

/// `Some(n)` for a receive of `n` bytes, `None` for one that would block.
fn would_block(got: io::Result<usize>) -> io::Result<Option<usize>> {
    match got {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
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
        let partial = r.partial.as_ref().expect("a partial frame");
        assert!(partial.payload.capacity() <= GROWTH_STEP);
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

    fn frame(outcome: io::Result<ReadOutcome>) -> Encoded {
        match outcome.unwrap() {
            ReadOutcome::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn reading_ahead_takes_several_small_frames_in_one_receive() {
        let (a, b) = socketpair().unwrap();
        for msg in [&b"one"[..], b"", b"three"] {
            write_frame(a.as_fd(), msg, &[]).unwrap();
        }
        let mut r = FrameReader::read_ahead(1 << 20);
        assert!(!r.has_frame());
        assert_eq!(frame(r.read(b.as_fd(), true)).bytes, b"one");
        // The socket is empty now; the rest is in the reader.
        let [readable] = wait_readable([b.as_fd()], Some(Instant::now())).unwrap();
        assert!(!readable);
        assert!(r.has_frame());
        assert_eq!(frame(r.read(b.as_fd(), true)).bytes, b"");
        assert_eq!(frame(r.read(b.as_fd(), true)).bytes, b"three");
        assert!(!r.has_frame());
        assert!(matches!(r.read(b.as_fd(), true).unwrap(), ReadOutcome::WouldBlock));
    }

    /// Sends `tag` through `fd` (one end of a socketpair) and reads it
    /// from `other`, to tell which socket an fd that arrived is.
    fn same_socket(fd: &OwnedFd, other: &OwnedFd, tag: &[u8]) -> bool {
        send_vectored_with_fds(fd.as_fd(), &[IoSlice::new(tag)], &[]).unwrap();
        let mut got = [0u8; 16];
        match recv_with_fds(other.as_fd(), &mut got, &mut Vec::new(), true) {
            Ok(n) => &got[..n] == tag,
            Err(_) => false,
        }
    }

    #[test]
    fn reading_ahead_gives_each_frame_its_own_fds() {
        let (a, b) = socketpair().unwrap();
        let (x1, x2) = socketpair().unwrap();
        let (y1, y2) = socketpair().unwrap();
        let (z1, z2) = socketpair().unwrap();
        write_frame(a.as_fd(), b"plain", &[]).unwrap();
        write_frame(a.as_fd(), b"x", &[x1.as_fd()]).unwrap();
        write_frame(a.as_fd(), b"plain again", &[]).unwrap();
        write_frame(a.as_fd(), &[9u8; 100_000], &[y1.as_fd(), z1.as_fd()]).unwrap();
        write_frame(a.as_fd(), b"last", &[]).unwrap();
        let mut r = FrameReader::read_ahead(1 << 20);
        let mut frames = Vec::new();
        while frames.len() < 5 {
            match r.read(b.as_fd(), true).unwrap() {
                ReadOutcome::Frame(f) => frames.push(f),
                ReadOutcome::WouldBlock => {
                    wait_readable([b.as_fd()], None).unwrap();
                }
                ReadOutcome::Eof => panic!("end of file after {} frames", frames.len()),
            }
        }
        let counts: Vec<usize> = frames.iter().map(|f| f.fds.len()).collect();
        assert_eq!(counts, [0, 1, 0, 2, 0]);
        assert_eq!(frames[3].bytes.len(), 100_000);
        assert!(same_socket(&frames[1].fds[0], &x2, b"x"));
        assert!(same_socket(&frames[3].fds[0], &y2, b"y"));
        assert!(same_socket(&frames[3].fds[1], &z2, b"z"));
    }

    #[test]
    fn read_into_takes_frames_straight_and_refuses_what_does_not_fit() {
        let (a, b) = socketpair().unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            write_frame(a.as_fd(), b"tiny", &[]).unwrap();
            write_frame(a.as_fd(), &sent, &[]).unwrap();
            write_frame(a.as_fd(), b"0123456789", &[]).unwrap();
            write_frame(a.as_fd(), b"end", &[]).unwrap();
        });
        let mut r = FrameReader::read_ahead(1 << 20);
        let mut dest = vec![0u8; 400_000];
        match r.read_into(b.as_fd(), &mut dest).unwrap() {
            IntoOutcome::Read(n, _) => assert_eq!(&dest[..n], b"tiny"),
            other => panic!("{other:?}"),
        }
        match r.read_into(b.as_fd(), &mut dest).unwrap() {
            IntoOutcome::Read(n, _) => assert_eq!(&dest[..n], &big[..]),
            other => panic!("{other:?}"),
        }
        match r.read_into(b.as_fd(), &mut dest[..4]).unwrap() {
            IntoOutcome::TooLong(f) => assert_eq!(f.bytes, b"0123456789"),
            other => panic!("{other:?}"),
        }
        match r.read_into(b.as_fd(), &mut dest[..4]).unwrap() {
            IntoOutcome::Read(n, _) => assert_eq!(&dest[..n], b"end"),
            other => panic!("{other:?}"),
        }
        writer.join().unwrap();
        assert!(matches!(r.read_into(b.as_fd(), &mut dest).unwrap(), IntoOutcome::Eof));
    }

    #[test]
    fn a_too_long_frame_among_read_ahead_ones_is_skipped() {
        let (a, b) = socketpair().unwrap();
        let writer = std::thread::spawn(move || {
            write_frame(a.as_fd(), b"ok", &[]).unwrap();
            write_frame(a.as_fd(), &[1u8; 50], &[]).unwrap();
            write_frame(a.as_fd(), &[2u8; 200_000], &[]).unwrap();
            write_frame(a.as_fd(), b"fine", &[]).unwrap();
        });
        let mut r = FrameReader::read_ahead(40);
        assert_eq!(frame(r.read(b.as_fd(), false)).bytes, b"ok");
        for len in [50, 200_000] {
            let err = r.read(b.as_fd(), false).unwrap_err();
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<FrameTooLong>()).copied();
            assert_eq!(inner, Some(FrameTooLong { len, max: 40 }));
        }
        assert_eq!(frame(r.read(b.as_fd(), false)).bytes, b"fine");
        writer.join().unwrap();
        assert!(matches!(r.read(b.as_fd(), false).unwrap(), ReadOutcome::Eof));
    }

    #[test]
    fn a_reader_resumes_with_what_another_had_read_ahead() {
        let (a, b) = socketpair().unwrap();
        let (x1, x2) = socketpair().unwrap();
        write_frame(a.as_fd(), b"first", &[]).unwrap();
        write_frame(a.as_fd(), b"second", &[x1.as_fd()]).unwrap();
        write_frame(a.as_fd(), b"third", &[]).unwrap();
        let mut r = FrameReader::read_ahead(1 << 20);
        assert_eq!(frame(r.read(b.as_fd(), true)).bytes, b"first");
        let (bytes, fds) = r.pending();
        assert!(!bytes.is_empty());
        let fds: Vec<(u64, Vec<OwnedFd>)> = fds
            .into_iter()
            .map(|(at, fds)| (at, fds.iter().map(|fd| fd.try_clone_to_owned().unwrap()).collect()))
            .collect();
        let mut resumed = FrameReader::resume(1 << 20, bytes.to_vec(), fds);
        drop(r);
        let second = frame(resumed.read(b.as_fd(), true));
        assert_eq!((second.bytes.as_slice(), second.fds.len()), (&b"second"[..], 1));
        assert!(same_socket(&second.fds[0], &x2, b"x"));
        assert_eq!(frame(resumed.read(b.as_fd(), true)).bytes, b"third");
    }
}
