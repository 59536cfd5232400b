//! The `#[remote]` table: every annotated fn, by name, with a type-erased
//! trampoline that decodes the arguments, calls the fn and encodes the
//! result. A child finds its target here by name, never by address.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Encoded};
use crate::error::{Error, Result};

/// A function that can run in another process: what `#[remote]` makes of a
/// free fn.
///
/// The value is a unit struct named after the fn; it derefs to the fn, so
/// `square(3)` still works, and it is what [`spawn`](crate::spawn) and the
/// pool take. Implement it only through `#[multiproc::remote]`: the
/// attribute also registers the fn under [`NAME`](Remote::NAME), which is
/// how a child finds it.
///
/// ```
/// use multiproc::Remote;
///
/// #[multiproc::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// assert_eq!(square(3), 9);
/// assert_eq!(square.call((4,)), 16);
/// assert!(<square as Remote>::NAME.ends_with("::square"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a #[remote] function",
    label = "not a #[remote] function",
    note = "add `#[multiproc::remote]` to the fn: only registered fns can run in another process"
)]
pub trait Remote: Copy + Send + Sync + 'static {
    /// The arguments, as a tuple: `(u64,)` for one argument, `()` for none.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The return type.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The stable name the fn is registered under:
    /// `module_path!()` + `::` + the fn's name.
    const NAME: &'static str;
    /// Calls the fn in this process.
    fn call(&self, args: Self::Args) -> Self::Output;
}

/// One entry of the table, submitted by the code `#[remote]` generates.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    pub name: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub invoke: fn(Encoded) -> Result<Encoded>,
}

inventory::collect!(Registration);

/// Decodes the arguments of the fn registered as `name` from `input`,
/// calls `f` with them, and encodes what it returns: the body of every
/// registration's trampoline. Panics of the fn propagate to the caller.
#[doc(hidden)]
pub fn invoke<A, R>(name: &'static str, input: Encoded, f: impl FnOnce(A) -> R) -> Result<Encoded>
where
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = codec::decode(input)
        .map_err(|e| Error::Codec(format!("the arguments of `{name}` did not decode: {e}")))?;
    codec::encode(&f(args)).map_err(|e| Error::Codec(format!("the result of `{name}` did not encode: {e}")))
}

type Index = HashMap<&'static str, &'static Registration>;

fn index() -> &'static Result<Index, (&'static Registration, &'static Registration)> {
    static INDEX: OnceLock<Result<Index, (&'static Registration, &'static Registration)>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for reg in inventory::iter::<Registration> {
            if let Some(first) = index.insert(reg.name, reg) {
                return Err((first, reg));
            }
        }
        Ok(index)
    })
}

/// Checks that no two fns share a name. The runtime calls this before it
/// starts a child, so an ambiguous table is reported at once, naming both
/// places, instead of a child running the wrong fn.
pub(crate) fn check_unique() -> Result<()> {
    match index() {
        Ok(_) => Ok(()),
        Err((first, second)) => Err(Error::DuplicateFunction {
            name: first.name.to_owned(),
            first: format!("{}:{}", first.file, first.line),
            second: format!("{}:{}", second.file, second.line),
        }),
    }
}

/// Finds the fn registered as `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static Registration> {
    check_unique()?;
    match index() {
        Ok(index) => index.get(name).copied().ok_or_else(|| Error::UnknownFunction(name.to_owned())),
        Err(_) => unreachable!("check_unique returned Ok"),
    }
}
