//! The `#[remote]` and `#[managed]` attributes of [multiproc](https://docs.rs/multiproc).
//! Depend on `multiproc`, which re-exports it.

mod ast;
mod check;
mod expand;
mod managed;

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

/// Makes a type's values holdable by a `multiproc::Manager`: on the type's
/// inherent `impl` block, registers the type by name, dispatches its
/// `&self` and `&mut self` methods, and generates a proxy (`CounterProxy`
/// for `Counter`) with the same methods returning `multiproc::Result`.
///
/// See `multiproc::Managed` for an example.
#[proc_macro_attribute]
pub fn managed(args: TokenStream, item: TokenStream) -> TokenStream {
    managed::managed(args.into(), item.into()).into()
}
