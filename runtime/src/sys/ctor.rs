//! Running code before `main`.

use std::ffi::{c_char, c_int};

/// The signature libc calls `.init_array` entries with.
pub(crate) type InitFn = extern "C" fn(c_int, *const *const c_char, *const *const c_char);

/// Places a call to `$body(&Startup)` in `.init_array`, so the dynamic
/// loader (or, in a static binary, libc's start-up code) calls it before
/// `main` and before the test harness.
macro_rules! constructor {
    ($(#[$attr:meta])* static $name:ident = $body:path;) => {
        $(#[$attr])*
        #[used]
        // SAFETY: `.init_array` holds pointers to functions with the
        // signature libc calls them with, which `InitFn` is; the static holds
        // exactly one such pointer.
        #[unsafe(link_section = ".init_array")]
        static $name: $crate::sys::ctor::InitFn = {
            extern "C" fn constructor(
                argc: ::std::ffi::c_int,
                argv: *const *const ::std::ffi::c_char,
                envp: *const *const ::std::ffi::c_char,
            ) {
                // A panic cannot unwind out of an `extern "C"` fn: it aborts,
                // which is what a failing constructor should do.
                $body(&$crate::sys::ctor::Startup { argc, argv, envp, entry: &$name })
            }
            constructor
        };
    };
}

pub(crate) use constructor;

/// What a constructor was called with, and where its own entry is.
#[derive(Debug)]
pub(crate) struct Startup {
    pub(crate) argc: c_int,
    pub(crate) argv: *const *const c_char,
    pub(crate) envp: *const *const c_char,
    pub(crate) entry: *const InitFn,
}

unsafe extern "C" {
    // Provided by the linker (GNU ld, gold and lld alike) around the
    // `.init_array` of the object being linked.
    static __init_array_start: InitFn;
    static __init_array_end: InitFn;
}

impl Startup {
    /// Calls, in order, the `.init_array` entries after this constructor's
    /// own: those the loader would call next, before `main`.
    ///
    /// Entries run in link order, which the linker chooses: with thin LTO,
    /// for one, the `inventory` registrations of the crates using the runtime
    /// may come after the runtime's constructor. A constructor that is about
    /// to take the process over (and never return to the loader) calls them
    /// first, so that the process is as initialised as `main` would find it.
    /// Each runs exactly once: the loader never gets to them.
    pub(crate) fn run_later_constructors(&self) {
        // Only the addresses of the linker-provided symbols are taken.
        let (start, end) = (&raw const __init_array_start, &raw const __init_array_end);
        if !(start..end).contains(&self.entry) {
            return;
        }
        let mut next = self.entry.wrapping_add(1);
        while next < end {
            // SAFETY: `next` lies inside this object's `.init_array`, an array
            // of function pointers (relocated by the loader before any
            // constructor runs); libc calls each with (argc, argv, envp), and
            // so do we. Entries of 0 or -1 are padding some toolchains use.
            unsafe {
                let raw = next.cast::<usize>().read();
                if raw != 0 && raw != usize::MAX {
                    (next.read())(self.argc, self.argv, self.envp);
                }
            }
            next = next.wrapping_add(1);
        }
    }
}
