//! Shared memory: [`Value`], [`Array`], [`RawValue`] and [`RawArray`], over
//! memfd segments that every process holding the handle maps.
//!
//! The element types are plain old data: [`bytemuck::Pod`] (numbers, and
//! `#[repr(C)]` structs of them that derive it; `multiproc::Pod` is the
//! same trait and `#[derive(multiproc::Pod, multiproc::Zeroable)]` derives
//! it, with `bytemuck` in the dependencies). A handle is `Clone` (another
//! handle to the same memory) and can be passed to a remote fn, sent
//! through a pipe or put in a queue: the memory travels as its fd.
//!
//! `Value` and `Array` carry a lock, as Python's `Value` and `Array` do:
//! `get`, `set` and friends take it for the time of the copy, and
//! [`lock`](Value::lock) holds it for as long as its guard lives. The lock
//! is robust: a process that dies holding it does not block the others;
//! the next one gets it, and its guard says the previous owner died.
//! `RawValue` and `RawArray` have no lock.
//!
//! The memory has no name and no file in `/dev/shm`: it is gone when the
//! last process that holds a handle lets go of it, however it ends.

/// `Clone` (another handle to the same object) and serde (the segment's
/// fd, checked on arrival to be a segment of `$words` words, with a lock at
/// its start if `$locked`) for a synchronization object that is
/// `$name { segment: Arc<Segment<u32>> }`.
macro_rules! sync_handle {
    ($name:ident, $words:expr, $locked:expr) => {
        impl Clone for $name {
            /// Another handle to the same object.
            fn clone(&self) -> Self {
                $name { segment: self.segment.clone() }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&*self.segment, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                let segment = <super::Segment<u32> as serde::Deserialize>::deserialize(deserializer)?;
                if segment.len != $words || segment.locked != $locked {
                    return Err(crate::codec::de_error(concat!("this handle is not a ", stringify!($name))));
                }
                Ok($name { segment: std::sync::Arc::new(segment) })
            }
        }
    };
}

mod barrier;
mod condition;
mod lock;
mod named;
mod sync;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use lock::{Lock, LockGuard, RLock};
pub use named::SharedMemory;
pub use sync::{BoundedSemaphore, Event, Semaphore};

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::sync::Arc;

pub use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{RecvFd, SendFd};
use crate::error::{Error, Result};
use crate::sys::shm::{Locked, Mapping};

/// Where the data of a locked segment begins: after its mutex, at an
/// offset aligned for any element type up to 128-byte alignment.
const DATA: usize = 128;

/// A segment with a lock at its start and `len` `T`s after it, or only the
/// `T`s (raw).
struct Segment<T> {
    map: Mapping,
    len: usize,
    locked: bool,
    _items: PhantomData<T>,
}

impl<T: Pod> Segment<T> {
    fn data(locked: bool) -> usize {
        if locked { DATA } else { 0 }
    }

    fn create(kind: &str, items: &[T], len: usize, locked: bool) -> Result<Arc<Self>> {
        if std::mem::align_of::<T>() > DATA {
            return Err(Error::Codec(format!(
                "`{}` needs an alignment over {DATA} bytes, which shared memory here does not give",
                std::any::type_name::<T>()
            )));
        }
        let bytes = std::mem::size_of::<T>().checked_mul(len).and_then(|b| b.checked_add(Self::data(locked)));
        let bytes = bytes.ok_or_else(|| Error::Codec(format!("a {kind} of {len} elements is too large")))?;
        let map = Mapping::create(kind, bytes.max(1))?;
        if locked {
            map.init_mutex(0, false)?;
        }
        let segment = Arc::new(Segment { map, len, locked, _items: PhantomData });
        for (i, item) in items.iter().enumerate() {
            segment.map.write(segment.offset(i), *item);
        }
        Ok(segment)
    }

    fn offset(&self, index: usize) -> usize {
        Self::data(self.locked) + index * std::mem::size_of::<T>()
    }

    fn lock(&self) -> Locked<'_> {
        match self.map.lock(0, None) {
            Ok(Some(locked)) => locked,
            Ok(None) => unreachable!("a lock without a deadline does not time out"),
            Err(e) => panic!("the lock of a shared {}: {e}", std::any::type_name::<T>()),
        }
    }

    fn check_index(&self, index: usize) {
        assert!(index < self.len, "index out of bounds: the len is {} but the index is {index}", self.len);
    }
}

impl<T> Serialize for Segment<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (SendFd(self.map.fd().as_fd()), self.len as u64, std::mem::size_of::<T>() as u64, self.locked)
            .serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Segment<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (RecvFd(fd), len, size, locked): (RecvFd, u64, u64, bool) =
            Deserialize::deserialize(deserializer)?;
        if size != std::mem::size_of::<T>() as u64 {
            return Err(crate::codec::de_error(format!(
                "shared memory of {size}-byte elements cannot be read as `{}`",
                std::any::type_name::<T>()
            )));
        }
        let len = usize::try_from(len).map_err(crate::codec::de_error)?;
        let map = Mapping::open(fd).map_err(crate::codec::de_error)?;
        let needed = Self::data(locked) + len * std::mem::size_of::<T>();
        if map.len() < needed.max(1) {
            return Err(crate::codec::de_error("a shared segment smaller than its handle says"));
        }
        Ok(Segment { map, len, locked, _items: PhantomData })
    }
}

/// A `T` in shared memory, with a lock: Python's `multiprocessing.Value`.
///
/// ```
/// #[multiproc::remote]
/// fn add_one(n: multiproc::Value<f64>) {
///     *n.lock() += 1.0;
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let n = multiproc::Value::new(0.5f64)?;
/// multiproc::spawn(add_one, (n.clone(),))?.join()?;
/// assert_eq!(n.get(), 1.5);
/// # Ok(())
/// # }
/// ```
pub struct Value<T: Pod> {
    segment: Arc<Segment<T>>,
}

impl<T: Pod> Value<T> {
    /// A new shared value holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new(value: T) -> Result<Self> {
        Ok(Value { segment: Segment::create("multiproc-value", &[value], 1, true)? })
    }

    /// A copy of the value, read under the lock.
    pub fn get(&self) -> T {
        self.lock().value
    }

    /// Replaces the value, under the lock.
    pub fn set(&self, value: T) {
        *self.lock() = value;
    }

    /// Runs `f` on the value under the lock, as one step no other process
    /// can interleave with (`v.set(v.get() + 1)` is two steps), and returns
    /// what `f` returns.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// let hits = multiproc::Value::new(u8::MAX - 1)?;
    /// assert_eq!(hits.update(|n| n.checked_add(1).map(|m| *n = m)), Some(()));
    /// assert_eq!(hits.update(|n| n.checked_add(1).map(|m| *n = m)), None); // would overflow
    /// assert_eq!(hits.get(), u8::MAX);
    /// # Ok(())
    /// # }
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }

    /// Takes the lock and gives the value to read and change in place
    /// until the guard is dropped. If a process died holding the lock, the
    /// guard says so ([`ValueGuard::previous_owner_died`]).
    ///
    /// # Panics
    ///
    /// If this thread holds the lock already (waiting would never end).
    pub fn lock(&self) -> ValueGuard<'_, T> {
        let locked = self.segment.lock();
        let value = locked.slice::<T>(DATA, 1)[0];
        ValueGuard { locked, value, changed: false }
    }
}

/// The lock of a [`Value`], held, and the value: it derefs to `T`.
pub struct ValueGuard<'a, T: Pod> {
    locked: Locked<'a>,
    /// A copy, written back on drop if changed.
    value: T,
    changed: bool,
}

impl<T: Pod> ValueGuard<'_, T> {
    /// True if the process that held the lock before died holding it: the
    /// value may be half-updated.
    pub fn previous_owner_died(&self) -> bool {
        self.locked.owner_died()
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.value
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        if self.changed {
            self.locked.slice_mut::<T>(DATA, 1)[0] = self.value;
        }
    }
}

/// `len` `T`s in shared memory, with a lock: Python's
/// `multiprocessing.Array`. Indexing out of bounds panics, as for a slice.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// let a = multiproc::Array::<i32>::from_slice(&[0, 1, 2])?;
/// a.set(1, -1);
/// a.lock()[0] = 7;
/// assert_eq!(a.to_vec(), [7, -1, 2]);
/// # Ok(())
/// # }
/// ```
pub struct Array<T: Pod> {
    segment: Arc<Segment<T>>,
}

impl<T: Pod> Array<T> {
    /// `len` zeros.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new(len: usize) -> Result<Self> {
        Ok(Array { segment: Segment::create("multiproc-array", &[], len, true)? })
    }

    /// A copy of `items`.
    ///
    /// # Errors
    ///
    /// As [`new`](Array::new).
    pub fn from_slice(items: &[T]) -> Result<Self> {
        Ok(Array { segment: Segment::create("multiproc-array", items, items.len(), true)? })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.segment.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.segment.len == 0
    }

    /// Element `index`, read under the lock.
    ///
    /// # Panics
    ///
    /// If `index` is out of bounds.
    pub fn get(&self, index: usize) -> T {
        self.segment.check_index(index);
        self.lock()[index]
    }

    /// Sets element `index`, under the lock.
    ///
    /// # Panics
    ///
    /// If `index` is out of bounds.
    pub fn set(&self, index: usize, value: T) {
        self.segment.check_index(index);
        self.lock()[index] = value;
    }

    /// A copy of every element, read under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }

    /// Overwrites every element, under the lock.
    ///
    /// # Panics
    ///
    /// If `items` is not as long as the array.
    pub fn copy_from_slice(&self, items: &[T]) {
        self.lock().copy_from_slice(items);
    }

    /// Takes the lock and gives the elements to read and change in place
    /// until the guard is dropped.
    ///
    /// # Panics
    ///
    /// If this thread holds the lock already.
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        ArrayGuard { locked: self.segment.lock(), len: self.segment.len, _items: PhantomData }
    }
}

/// The lock of an [`Array`], held: it derefs to `[T]`.
pub struct ArrayGuard<'a, T: Pod> {
    locked: Locked<'a>,
    len: usize,
    _items: PhantomData<&'a mut [T]>,
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// True if the process that held the lock before died holding it.
    pub fn previous_owner_died(&self) -> bool {
        self.locked.owner_died()
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.locked.slice(DATA, self.len)
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.locked.slice_mut(DATA, self.len)
    }
}

/// A `T` in shared memory, without a lock: Python's `RawValue`. Reads and
/// writes of types larger than a machine word may interleave with another
/// process's and tear; use [`Value`] when that matters.
pub struct RawValue<T: Pod> {
    segment: Arc<Segment<T>>,
}

impl<T: Pod> RawValue<T> {
    /// A new shared value holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new(value: T) -> Result<Self> {
        Ok(RawValue { segment: Segment::create("multiproc-raw-value", &[value], 1, false)? })
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.segment.map.read(0)
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        self.segment.map.write(0, value);
    }
}

/// `len` `T`s in shared memory, without a lock: Python's `RawArray`.
pub struct RawArray<T: Pod> {
    segment: Arc<Segment<T>>,
}

impl<T: Pod> RawArray<T> {
    /// `len` zeros.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the system gives no shared memory.
    pub fn new(len: usize) -> Result<Self> {
        Ok(RawArray { segment: Segment::create("multiproc-raw-array", &[], len, false)? })
    }

    /// A copy of `items`.
    ///
    /// # Errors
    ///
    /// As [`new`](RawArray::new).
    pub fn from_slice(items: &[T]) -> Result<Self> {
        Ok(RawArray { segment: Segment::create("multiproc-raw-array", items, items.len(), false)? })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.segment.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.segment.len == 0
    }

    /// Element `index`.
    ///
    /// # Panics
    ///
    /// If `index` is out of bounds.
    pub fn get(&self, index: usize) -> T {
        self.segment.check_index(index);
        self.segment.map.read(self.segment.offset(index))
    }

    /// Sets element `index`.
    ///
    /// # Panics
    ///
    /// If `index` is out of bounds.
    pub fn set(&self, index: usize, value: T) {
        self.segment.check_index(index);
        self.segment.map.write(self.segment.offset(index), value);
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Overwrites every element.
    ///
    /// # Panics
    ///
    /// If `items` is not as long as the array.
    pub fn copy_from_slice(&self, items: &[T]) {
        assert_eq!(items.len(), self.len(), "source slice length does not match the array's");
        for (i, item) in items.iter().enumerate() {
            self.set(i, *item);
        }
    }
}

macro_rules! handle {
    ($($name:ident: locked $locked:expr, single $single:expr);*) => {$(
        impl<T: Pod> Clone for $name<T> {
            /// Another handle to the same memory.
            fn clone(&self) -> Self {
                $name { segment: self.segment.clone() }
            }
        }

        impl<T: Pod> Serialize for $name<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                self.segment.serialize(serializer)
            }
        }

        impl<'de, T: Pod> Deserialize<'de> for $name<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let segment = Segment::deserialize(deserializer)?;
                if segment.locked != $locked || ($single && segment.len != 1) {
                    return Err(crate::codec::de_error(concat!("this handle is not a ", stringify!($name))));
                }
                Ok($name { segment: Arc::new(segment) })
            }
        }

        impl<T: Pod> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("type", &std::any::type_name::<T>())
                    .field("len", &self.segment.len)
                    .field("fd", &self.segment.map.fd())
                    .finish()
            }
        }
    )*};
}

handle!(
    Value: locked true, single true;
    Array: locked true, single false;
    RawValue: locked false, single true;
    RawArray: locked false, single false
);

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard").field("value", &self.value).finish()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    /// What decoding `from`'s handle as a `To` gives.
    fn reread<From: Serialize, To: serde::de::DeserializeOwned>(from: &From) -> Result<To> {
        codec::decode(codec::encode(from)?)
    }

    #[test]
    fn a_handle_decodes_only_as_what_it_is() {
        let value = Value::new(7u32).unwrap();
        assert_eq!(reread::<_, Value<u32>>(&value).unwrap().get(), 7);
        let err = reread::<_, Value<u64>>(&value).unwrap_err().to_string();
        assert!(err.contains("4-byte elements"), "{err}");
        assert!(reread::<_, RawValue<u32>>(&value).is_err(), "a locked segment is not a raw one");
        assert!(reread::<_, Value<u32>>(&Array::<u32>::new(3).unwrap()).is_err(), "an array is not a value");
        assert!(reread::<_, Array<u32>>(&Array::<u32>::new(3).unwrap()).is_ok());

        let lock = Lock::new().unwrap();
        assert!(reread::<_, Lock>(&lock).is_ok());
        let err = reread::<_, Semaphore>(&lock).unwrap_err().to_string();
        assert!(err.contains("not a Semaphore"), "{err}");
        assert!(reread::<_, Barrier>(&Condition::new().unwrap()).is_err());
        assert!(
            reread::<_, Event>(&Semaphore::new(1).unwrap()).is_ok(),
            "the same shape: only typed channels tell them apart"
        );
    }

    #[test]
    fn an_element_type_aligned_past_the_segment_header_is_refused() {
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C, align(256))]
        struct Wide([u8; 256]);
        match Value::new(Wide([0; 256])) {
            Err(Error::Codec(msg)) => assert!(msg.contains("alignment"), "{msg}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
