//! The process environment, touched only while the process has one thread.

use std::ffi::OsStr;

/// Removes `key` from the environment.
///
/// Called only from the constructor that runs before `main`, when the
/// process has a single thread, so no other thread can be reading the
/// environment at the same time.
pub(crate) fn remove_var_single_threaded(key: &str) {
    // SAFETY: the caller runs before `main` in a single-threaded process
    // (constructors run before any thread can be spawned by the program), so
    // nothing reads or writes the environment concurrently.
    unsafe { std::env::remove_var(OsStr::new(key)) }
}
