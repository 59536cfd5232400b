//! Unpredictable numbers for tokens, names and challenges.

use std::io;

/// Returns 8 bytes from the kernel's random source.
pub(crate) fn random_u64() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    fill(&mut buf)?;
    Ok(u64::from_ne_bytes(buf))
}

/// Fills `buf` from the kernel's random source (`getrandom`, which waits
/// only until the pool is first seeded at boot).
pub(crate) fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = super::cvt_retry(|| unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) })?;
        filled += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_covers_the_whole_buffer() {
        // A working source leaves 32 zero bytes in a row with odds of 2^-256.
        let mut buf = [0u8; 1024];
        fill(&mut buf).unwrap();
        assert!(buf.chunks(32).all(|chunk| chunk.iter().any(|&b| b != 0)));
        let mut empty = [0u8; 0];
        fill(&mut empty).unwrap();
    }
}
