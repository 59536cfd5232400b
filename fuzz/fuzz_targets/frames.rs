//! `FrameReader` over a socketpair: see `multiproc_runtime::__fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiproc_runtime::__fuzz::frames(data));
