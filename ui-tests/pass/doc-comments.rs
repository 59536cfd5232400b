#![deny(missing_docs)]
//! A crate whose remote fn is documented.

/// Doubles `x`.
///
/// ```
/// assert_eq!(2 * 2, 4);
/// ```
#[multiproc::remote]
pub fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    assert_eq!(double(21), 42);
    assert_eq!(format!("{double:?}"), concat!(module_path!(), "::double"));
}
