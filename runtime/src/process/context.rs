//! Start methods chosen per call site rather than globally.

use crate::error::Result;
use crate::registry::Remote;
use crate::start::StartMethod;

use super::{Process, ProcessBuilder};

/// The crate's constructors bound to one start method, leaving the global
/// default alone: what a library uses instead of
/// [`set_start_method`](crate::set_start_method).
///
/// ```
/// use multiproc::{Context, StartMethod};
///
/// #[multiproc::remote]
/// fn method() -> StartMethod {
///     multiproc::get_start_method()
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let ctx = Context::new(StartMethod::Spawn);
/// assert_eq!(ctx.spawn(method, ())?.join()?, StartMethod::Spawn);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

impl Context {
    /// A context that starts processes with `method`.
    pub fn new(method: StartMethod) -> Self {
        Context { method }
    }

    /// The context's start method.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// Like [`spawn`](crate::spawn), with this context's start method.
    ///
    /// # Errors
    ///
    /// As [`spawn`](crate::spawn).
    pub fn spawn<F: Remote>(&self, f: F, args: F::Args) -> Result<Process<F::Output>> {
        self.process_builder().spawn(f, args)
    }

    /// Like [`Process::builder`], with this context's start method.
    pub fn process_builder(&self) -> ProcessBuilder {
        Process::builder().start_method(self.method)
    }
}
