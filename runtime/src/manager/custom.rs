//! User types held by a manager: what `#[multiproc::managed]` implements,
//! and the pieces its generated code calls.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Proxy;
use super::client::ObjectRef;
use super::server::{Access, Caller, Served};
use crate::codec::{self, Encoded};
use crate::error::{Error, Result};

/// A type whose values a [`Manager`](crate::Manager) can hold, calling its
/// methods for any process: implemented by `#[multiproc::managed]` on the
/// type's `impl` block, which also generates its proxy (`CounterProxy` for
/// `Counter`, with the same methods returning `Result`).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter {
///     n: i64,
/// }
///
/// #[multiproc::managed]
/// impl Counter {
///     fn incr(&mut self, by: i64) -> i64 {
///         self.n += by;
///         self.n
///     }
///
///     fn get(&self) -> i64 {
///         self.n
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = multiproc::Manager::start()?;
/// let counter: CounterProxy = manager.create(Counter { n: 0 })?;
/// assert_eq!(counter.incr(5)?, 5);
/// assert_eq!(counter.get()?, 5);
/// # Ok(())
/// # }
/// ```
///
/// Methods that take `&self` may run at the same time for several
/// callers; those that take `&mut self` run alone.
pub trait Managed: ManagedValue {
    /// The proxy `#[managed]` generates.
    type Proxy: Proxy;

    #[doc(hidden)]
    const TYPEID: &'static str;

    /// `Some(true)` for a method that takes `&mut self`, `Some(false)` for
    /// one that takes `&self`, `None` if there is no such method.
    #[doc(hidden)]
    fn __access(method: &str) -> Option<bool>;

    #[doc(hidden)]
    fn __call(&self, method: &str, args: Encoded) -> Result<Encoded>;

    #[doc(hidden)]
    fn __call_mut(&mut self, method: &str, args: Encoded) -> Result<Encoded>;
}

/// A user type the servers can make, found by its type id.
#[doc(hidden)]
#[derive(Debug)]
pub struct ManagedType {
    pub typeid: &'static str,
    pub make: fn(Encoded) -> Result<ManagedObject>,
}

inventory::collect!(ManagedType);

/// A user object as the server holds it.
#[doc(hidden)]
pub struct ManagedObject(pub(crate) Box<dyn Served>);

impl std::fmt::Debug for ManagedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagedObject")
    }
}

/// Makes a `T` from its encoded value, for a server.
#[doc(hidden)]
pub fn make_managed<T: ManagedValue + Managed>(init: Encoded) -> Result<ManagedObject> {
    Ok(ManagedObject(Box::new(User(codec::decode::<T>(init)?))))
}

/// The user type registered as `typeid`, made from `init`.
pub(crate) fn make(typeid: &str, init: Encoded) -> Option<Result<Box<dyn Served>>> {
    let found = inventory::iter::<ManagedType>.into_iter().find(|t| t.typeid == typeid)?;
    Some((found.make)(init).map(|object| object.0))
}

struct User<T>(T);

impl<T: Managed> Served for User<T> {
    fn access(&self, method: &str) -> Option<Access> {
        T::__access(method).map(|mutates| if mutates { Access::Exclusive } else { Access::Shared })
    }

    fn call(&self, method: &str, args: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        self.0.__call(method, args)
    }

    fn call_mut(&mut self, method: &str, args: Encoded, _: &Caller<'_>) -> Result<Encoded> {
        self.0.__call_mut(method, args)
    }
}

/// Runs a method in the server: decodes its arguments, calls, encodes the
/// result.
#[doc(hidden)]
pub fn call_method<A: DeserializeOwned, R: Serialize>(
    args: Encoded,
    f: impl FnOnce(A) -> R,
) -> Result<Encoded> {
    let args = codec::decode(args)?;
    codec::encode(&f(args))
}

/// Calls a method through a proxy.
#[doc(hidden)]
pub fn call_proxy<A: Serialize, R: DeserializeOwned>(
    object: &ObjectRef,
    method: &str,
    args: &A,
) -> Result<R> {
    object.call(method, args)
}

/// The error of a method the type does not have.
#[doc(hidden)]
pub fn unknown_method(typeid: &str, method: &str) -> Error {
    super::server::no_method(typeid, method)
}

/// Marks types that can be an argument of a `#[managed]` method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a #[managed] method: it must implement serde's `Serialize` and `DeserializeOwned`",
    label = "this argument cannot be sent to the manager",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or pass an owned type that has them"
)]
pub trait ManagedArg: serde::Serialize + serde::de::DeserializeOwned + 'static {}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> ManagedArg for T {}

/// Marks types that can be returned by a `#[managed]` method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a #[managed] method: it must implement serde's `Serialize` and `DeserializeOwned`",
    label = "this value cannot be sent back from the manager",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or return an owned type that has them"
)]
pub trait ManagedReturn: serde::Serialize + serde::de::DeserializeOwned + 'static {}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> ManagedReturn for T {}

/// Marks types whose values a manager can hold.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be held by a manager: it must implement serde's `Serialize` and `DeserializeOwned`, and `Send` and `Sync`",
    label = "this type cannot be sent to the manager",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it"
)]
pub trait ManagedValue: Serialize + DeserializeOwned + Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> ManagedValue for T {}
