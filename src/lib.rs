#![doc = include_str!("../README.md")]

pub use multiproc_macros::remote;
pub use multiproc_runtime::*;
