//! Hostile pickles: see `multiproc_runtime::__fuzz::pickle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiproc_runtime::__fuzz::pickle(data));
