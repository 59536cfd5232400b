//! Unix stream sockets that carry file descriptors beside their bytes.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{cvt, cvt_retry};

/// The most fds one message may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

/// Room for a control message with `MAX_FDS_PER_MESSAGE` fds, aligned for
/// `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuffer([u8; 1024]);

/// A connected pair of close-on-exec Unix stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    pair(libc::SOCK_STREAM)
}

/// A connected pair of close-on-exec Unix sockets that keep message
/// boundaries (`SOCK_SEQPACKET`): each `sendmsg` is received whole by one
/// `recvmsg`, with its fds.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    pair(libc::SOCK_SEQPACKET)
}

fn pair(kind: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds socketpair writes.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded, so both numbers are fresh fds that
    // nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `bufs` in one `sendmsg`, with `fds` attached (SCM_RIGHTS) when
/// there are any. Returns how many bytes went out; a short count means the
/// caller sends the rest, without the fds. Never raises SIGPIPE: a closed
/// peer is `EPIPE`.
pub(crate) fn send_vectored_with_fds(
    sock: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    send_raw(sock, bufs, fds, 0)
}

/// Like [`send_vectored_with_fds`], but `WouldBlock` instead of waiting
/// for room.
pub(crate) fn try_send_with_fds(
    sock: BorrowedFd<'_>,
    buf: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    send_raw(sock, &[IoSlice::new(buf)], fds, libc::MSG_DONTWAIT)
}

fn send_raw(
    sock: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
    flags: libc::c_int,
) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a message can carry at most {MAX_FDS_PER_MESSAGE} handles, not {}", fds.len()),
        ));
    }
    let mut cmsg = CmsgBuffer([0; 1024]);
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    if !fds.is_empty() {
        let payload = std::mem::size_of_val(fds) as libc::c_uint;
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points to `space` <= 1024 writable, aligned
        // bytes, so CMSG_FIRSTHDR returns a valid header pointer, and
        // CMSG_DATA has room for `payload` bytes after it.
        unsafe {
            let hdr = libc::CMSG_FIRSTHDR(&msg);
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            (*hdr).cmsg_len = libc::CMSG_LEN(payload) as _;
            let data = libc::CMSG_DATA(hdr).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                data.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    // SAFETY: `msg` points at live iovecs and a live control buffer.
    let n = cvt_retry(|| unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL | flags) })?;
    Ok(n as usize)
}

/// Receives into `buf` with one `recvmsg`, appending any fds that came with
/// the bytes to `fds` (close-on-exec). Returns the byte count; 0 is end of
/// file. With `nonblocking`, an empty socket gives `WouldBlock` instead of
/// waiting.
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<usize> {
    let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `buf` is `buf.len()` writable bytes.
    unsafe { recv_raw(sock, buf.as_mut_ptr(), buf.len(), fds, flags) }
}

/// Looks at the next message without taking it, and without waiting: its
/// bytes go to `buf`, and copies of its fds to `fds`. `WouldBlock` if there
/// is none.
pub(crate) fn peek_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    // SAFETY: `buf` is `buf.len()` writable bytes.
    unsafe { recv_raw(sock, buf.as_mut_ptr(), buf.len(), fds, libc::MSG_DONTWAIT | libc::MSG_PEEK) }
}

/// Receives up to `max` bytes with one `recvmsg` and appends them to `buf`,
/// without initializing its spare capacity first (a payload of megabytes
/// is not zeroed only to be overwritten). Otherwise as [`recv_with_fds`].
pub(crate) fn recv_append(
    sock: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `spare` is at least `max` bytes of the vector's allocation;
    // the kernel only writes to them, and never reads them.
    let n = unsafe { recv_raw(sock, spare.as_mut_ptr().cast(), max, fds, flags) }?;
    // SAFETY: recvmsg initialized the first `n <= max` bytes of the spare
    // capacity, which directly follow the initialized ones.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One `recvmsg` into `len` bytes at `ptr`.
///
/// # Safety
///
/// `ptr` must be valid for writes of `len` bytes for the duration of the
/// call.
unsafe fn recv_raw(
    sock: BorrowedFd<'_>,
    ptr: *mut u8,
    len: usize,
    fds: &mut Vec<OwnedFd>,
    extra_flags: libc::c_int,
) -> io::Result<usize> {
    let mut cmsg = CmsgBuffer([0; 1024]);
    let mut iov = libc::iovec { iov_base: ptr.cast(), iov_len: len };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.0.len() as _;
    let flags = libc::MSG_CMSG_CLOEXEC | extra_flags;
    // SAFETY: `msg` points at a live iovec over the caller's `len` writable
    // bytes and at a live control buffer of the size it states.
    let n = cvt_retry(|| unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) })? as usize;
    // SAFETY: recvmsg filled `msg`; the CMSG_* walk stays inside
    // `msg_controllen` bytes of our buffer, and every SCM_RIGHTS entry is a
    // fresh fd installed in this process for us to own.
    unsafe {
        let mut hdr = libc::CMSG_FIRSTHDR(&msg);
        while !hdr.is_null() {
            if (*hdr).cmsg_level == libc::SOL_SOCKET && (*hdr).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(hdr).cast::<RawFd>();
                let header = data.cast::<u8>().offset_from(hdr.cast::<u8>()) as usize;
                let count = ((*hdr).cmsg_len as usize - header) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            hdr = libc::CMSG_NXTHDR(&msg, hdr);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("a message carried more handles than fit; some were lost"));
    }
    Ok(n)
}
