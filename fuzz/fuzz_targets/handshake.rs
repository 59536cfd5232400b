//! The authkey handshake: see `multiproc_runtime::__fuzz::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiproc_runtime::__fuzz::handshake(data));
