//! Unpredictable numbers for tokens and names.

use std::io;

/// Returns 8 bytes from the kernel's random source.
pub(crate) fn random_u64() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = super::cvt_retry(|| unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) })?;
        filled += n as usize;
    }
    Ok(u64::from_ne_bytes(buf))
}
