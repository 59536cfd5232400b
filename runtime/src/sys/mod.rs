//! The only home of `unsafe` and of raw libc calls.
//!
//! Every function here wraps one system facility once, returns owned types
//! (`OwnedFd`, plain integers) and turns `errno` into `std::io::Error` at this
//! boundary, so the layers above never touch a raw pointer.

pub(crate) mod ctor;
pub(crate) mod env;
pub(crate) mod fd;
pub(crate) mod fork_mutex;
pub(crate) mod poll;
pub(crate) mod process;
pub(crate) mod random;
pub(crate) mod shm;
pub(crate) mod socket;

use std::io;

/// Turns a libc return value into `io::Result`, reading `errno` on `-1`.
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Like [`cvt`], but retries the call while it fails with `EINTR`.
fn cvt_retry<T: Copy + PartialEq + From<i8>>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
