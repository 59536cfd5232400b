//! The `#[remote]` table: every annotated fn, by name, with a type-erased
//! trampoline that decodes the arguments, calls the fn and encodes the
//! result. A child finds its target here by name, never by address.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    pub invoke: fn(Input) -> Result<Encoded>,
}

inventory::collect!(Registration);

/// What a trampoline is asked to run.
#[doc(hidden)]
#[derive(Debug)]
pub enum Input {
    /// One call: the encoded arguments; the result is the encoded return
    /// value, and a panic propagates.
    One(Encoded),
    /// A pool's chunk: an encoded `Vec` of argument tuples, from the
    /// offset on (the bytes before it are the task's header); the result
    /// is an encoded `ChunkResults<R>`, with each panic caught.
    Chunk(Encoded, usize),
}

/// How one call of a chunk ended: its value, or its panic.
pub(crate) type ItemResult<R> = std::result::Result<R, Panicked>;

/// How a chunk ended: every value when no call panicked (the common case,
/// and the compact one), else each call's result.
pub(crate) type ChunkResults<R> = std::result::Result<Vec<R>, Vec<ItemResult<R>>>;

/// A panic caught in a call: its message and where it happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Panicked {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

thread_local! {
    /// Where the last panic of this thread happened, recorded by the hook
    /// [`record_panic_locations`] installs: per thread, as the manager's
    /// server catches panics of several threads at once.
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Makes every later panic record its location for [`catch_panic`], then
/// go on to the hook that was there before. Once per process: a child
/// forked from a process that did it inherits the hook, and does not touch
/// the hook's lock.
pub(crate) fn record_panic_locations() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // `try_with`: a thread that is exiting has no locals left.
            let _ = PANIC_LOCATION.try_with(|l| *l.borrow_mut() = info.location().map(ToString::to_string));
            previous(info);
        }));
    });
}

/// Runs `f`, catching a panic as its message and location (the location
/// is known once [`record_panic_locations`] has run).
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, Panicked> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let location = PANIC_LOCATION.try_with(|l| l.borrow_mut().take()).ok().flatten();
        Panicked { message, location }
    })
}

/// Runs the fn registered as `name` once with `args`, as an initializer:
/// how it failed, if it did (a panic, or a fn that is not there or whose
/// arguments do not decode, as a message with no location).
pub(crate) fn run_initializer(name: &str, args: Encoded) -> std::result::Result<(), Panicked> {
    let ran = lookup(name).map(|reg| catch_panic(|| (reg.invoke)(Input::One(args))));
    match ran {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err(e))) | Err(e) => Err(Panicked { message: e.to_string(), location: None }),
        Ok(Err(panicked)) => Err(panicked),
    }
}

/// Decodes the arguments of the fn registered as `name` from `input`,
/// calls `f` with them, and encodes what it returns: the body of every
/// registration's trampoline. For [`Input::One`], panics of the fn
/// propagate to the caller; for [`Input::Chunk`], each is caught and
/// becomes that call's result.
#[doc(hidden)]
pub fn invoke<A, R>(name: &'static str, input: Input, f: impl Fn(A) -> R) -> Result<Encoded>
where
    A: DeserializeOwned,
    R: Serialize,
{
    let decode_error = |e| Error::Codec(format!("the arguments of `{name}` did not decode: {e}"));
    let encode_error = |e| Error::Codec(format!("the result of `{name}` did not encode: {e}"));
    match input {
        Input::One(input) => {
            let args: A = codec::decode(input).map_err(decode_error)?;
            codec::encode(&f(args)).map_err(encode_error)
        }
        Input::Chunk(input, offset) => {
            let items: Vec<A> = codec::decode_at(input, offset).map_err(decode_error)?;
            codec::encode(&run_chunk(items, f)).map_err(encode_error)
        }
    }
}

/// Calls `f` on each item, catching panics; values stay a plain `Vec`
/// until a call panics.
fn run_chunk<A, R>(items: Vec<A>, f: impl Fn(A) -> R) -> ChunkResults<R> {
    let mut values = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    for args in items.by_ref() {
        match catch_panic(|| f(args)) {
            Ok(v) => values.push(v),
            Err(panicked) => {
                let mut each: Vec<ItemResult<R>> = values.into_iter().map(Ok).collect();
                each.push(Err(panicked));
                each.extend(items.map(|args| catch_panic(|| f(args))));
                return Err(each);
            }
        }
    }
    Ok(values)
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
