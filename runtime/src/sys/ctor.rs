//! Running code before `main`.

/// Places `$body` in `.init_array`, so the dynamic loader (or, in a static
/// binary, libc's start-up code) calls it before `main` and before the test
/// harness. Entries of crates linked earlier run first; rustc links a crate's
/// dependents before the crate itself, so every `inventory` registration of
/// the crates that use the runtime is in place when this runs.
macro_rules! constructor {
    ($(#[$attr:meta])* static $name:ident = $body:path;) => {
        $(#[$attr])*
        #[used]
        // SAFETY: `.init_array` holds pointers to `extern "C" fn()`s that take
        // no arguments the callee reads; the static holds exactly one such
        // pointer, and the function it points to never unwinds (see below).
        #[unsafe(link_section = ".init_array")]
        static $name: extern "C" fn() = {
            extern "C" fn constructor() {
                // A panic must not unwind into the loader: `extern "C"`
                // functions abort on unwind, which is the behaviour we want.
                $body()
            }
            constructor
        };
    };
}

pub(crate) use constructor;
