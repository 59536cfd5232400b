//! The `#[remote]` attribute of [multiproc](https://docs.rs/multiproc).
//! Depend on `multiproc`, which re-exports it.

mod ast;
mod check;
mod expand;

use proc_macro::TokenStream;

/// Makes a free fn runnable in another process: registers it by name and
/// turns it into a `Copy` value that implements `multiproc::Remote` and can
/// still be called as before.
///
/// See the `multiproc` crate for the rules and examples.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::remote(args.into(), item.into()).into()
}
