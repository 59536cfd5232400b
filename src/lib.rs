#![doc = include_str!("../README.md")]

pub use multiproc_macros::{managed, remote};
pub use multiproc_runtime::*;
