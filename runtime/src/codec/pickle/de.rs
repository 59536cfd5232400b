//! serde's side of decoding: a `Deserializer` that walks the objects a
//! pickle built.
//!
//! The walk is the only recursive part of decoding, so it is where nesting
//! is bounded ([`MAX_DEPTH`]), where a container that contains itself is
//! refused, and where the copies made of objects the pickle refers to more
//! than once are counted against a budget.

use std::cell::Cell;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, EnumAccess, Error as _, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use super::PickleError;
use super::value::{Id, Integer, Object, Objects};

/// How deep containers may nest. Each level costs the deserializing code a
/// few stack frames (about 2.5 KB in a debug build, under 1 KB optimized),
/// so this keeps a hostile pickle well inside a thread's default 2 MiB
/// stack. Python's own data is rarely nested a tenth as deep.
pub(super) const MAX_DEPTH: usize = 256;

/// How many bytes (see [`Object::weight`]) the decoded value may exceed the
/// weight of a pickle without shared references by. A pickle that refers to
/// one object many times decodes to as many copies; this stops a small
/// pickle from expanding into gigabytes.
pub(super) const SHARING_ALLOWANCE: u64 = 64 << 20;

/// The state of one walk over the objects of a pickle.
#[derive(Debug)]
pub(super) struct Walk<'g> {
    objects: &'g Objects,
    depth: Cell<usize>,
    /// The weight the objects still to be visited may have.
    budget: Cell<u64>,
    /// Whether each container is being walked (to find cycles).
    active: Vec<Cell<bool>>,
}

impl<'g> Walk<'g> {
    /// A walk over `objects`, decoded from a pickle of `input_len` bytes.
    pub(super) fn new(objects: &'g Objects, input_len: usize) -> Self {
        // Without sharing, each object costs at least one input byte and
        // weighs 16 plus its payload (at most the input twice over, with
        // whitelisted copies), so this budget never stops such a pickle.
        let budget = 18u64.saturating_mul(input_len as u64).saturating_add(SHARING_ALLOWANCE);
        Walk {
            objects,
            depth: Cell::new(0),
            budget: Cell::new(budget),
            active: (0..objects.len()).map(|_| Cell::new(false)).collect(),
        }
    }

    /// A deserializer for the object `id`.
    pub(super) fn deserializer<'w>(&'w self, id: Id) -> ObjectDeserializer<'w, 'g> {
        ObjectDeserializer { walk: self, id }
    }
}

/// Marks a container as being walked; unmarks it when dropped.
struct Enter<'w, 'g> {
    walk: &'w Walk<'g>,
    id: Id,
}

impl Drop for Enter<'_, '_> {
    fn drop(&mut self) {
        self.walk.depth.set(self.walk.depth.get() - 1);
        if let Some(active) = self.walk.active.get(self.id) {
            active.set(false);
        }
    }
}

/// A serde `Deserializer` for one object of a pickle.
#[derive(Debug)]
pub(super) struct ObjectDeserializer<'w, 'g> {
    walk: &'w Walk<'g>,
    id: Id,
}

impl<'w, 'g> ObjectDeserializer<'w, 'g> {
    fn object(&self) -> &'g Object {
        self.walk.objects.get(self.id)
    }

    /// Counts this object against the walk's budget.
    fn charge(&self) -> Result<(), PickleError> {
        let weight = self.object().weight();
        let budget = self.walk.budget.get();
        if weight > budget {
            return Err(PickleError::new(format!(
                "the pickle refers to the same objects so many times that decoding it would take over \
                 {} MiB more than its size; refusing it",
                SHARING_ALLOWANCE >> 20
            )));
        }
        self.walk.budget.set(budget - weight);
        Ok(())
    }

    /// Enters this container: checks depth and cycles.
    fn enter(&self) -> Result<Enter<'w, 'g>, PickleError> {
        let depth = self.walk.depth.get();
        if depth >= MAX_DEPTH {
            return Err(PickleError::new(format!("containers nest deeper than {MAX_DEPTH} levels")));
        }
        let Some(active) = self.walk.active.get(self.id) else {
            return Err(PickleError::new("an object id is out of range"));
        };
        if active.replace(true) {
            return Err(PickleError::new(
                "the pickle holds a container that contains itself, which no Rust value can",
            ));
        }
        self.walk.depth.set(depth + 1);
        Ok(Enter { walk: self.walk, id: self.id })
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> PickleError {
        PickleError::new(format!("expected {expected}, found a {}", self.object().describe()))
    }

    fn visit_items<V: Visitor<'g>>(&self, ids: &'g [Id], visitor: V) -> Result<V::Value, PickleError> {
        let _entered = self.enter()?;
        let mut items = Items { walk: self.walk, ids: ids.iter(), index: 0 };
        let value = visitor.visit_seq(&mut items)?;
        if items.ids.len() != 0 {
            return Err(too_many(ids.len(), items.index));
        }
        Ok(value)
    }

    fn visit_bytes_as_items<V: Visitor<'g>>(bytes: &'g [u8], visitor: V) -> Result<V::Value, PickleError> {
        let mut items = ByteItems { bytes: bytes.iter(), index: 0 };
        let value = visitor.visit_seq(&mut items)?;
        if items.bytes.len() != 0 {
            return Err(too_many(bytes.len(), items.index));
        }
        Ok(value)
    }

    fn visit_entries<V: Visitor<'g>>(
        &self,
        pairs: &'g [(Id, Id)],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        let _entered = self.enter()?;
        let mut entries = Entries { walk: self.walk, pairs: pairs.iter(), value: None, index: 0 };
        let value = visitor.visit_map(&mut entries)?;
        if entries.pairs.len() != 0 {
            return Err(too_many(pairs.len(), entries.index));
        }
        Ok(value)
    }

    /// The integer, as a `T` (named `ty`).
    fn integer<T: TryFrom<i128> + TryFrom<u128>>(&self, ty: &str) -> Result<T, PickleError> {
        self.charge()?;
        let Object::Int(int) = self.object() else {
            return Err(self.invalid_type(&format!("an int (for a `{ty}`)").as_str()));
        };
        let value = match int {
            Integer::Small(i) => T::try_from(*i).ok(),
            Integer::Big(_) => int.to_u128().and_then(|u| T::try_from(u).ok()),
        };
        value.ok_or_else(|| PickleError::new(format!("the integer {int} does not fit a `{ty}`")))
    }
}

/// The error for a sequence or dict longer than the Rust value takes.
fn too_many(len: usize, taken: usize) -> PickleError {
    PickleError::new(format!("a Python container of {len} items, where the Rust value takes {taken}"))
}

/// What an item of a dict is called in an error's path.
fn key_segment(key: &Object) -> String {
    match key {
        Object::Str(s) => format!(".{s}"),
        Object::Int(i) => format!("[{i}]"),
        _ => "[..]".into(),
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {$(
        fn $method<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
            let value: $ty = self.integer(stringify!($ty))?;
            visitor.$visit(value)
        }
    )*};
}

impl<'g> de::Deserializer<'g> for ObjectDeserializer<'_, 'g> {
    type Error = PickleError;

    fn deserialize_any<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::None => visitor.visit_unit(),
            Object::Bool(b) => visitor.visit_bool(*b),
            Object::Int(Integer::Small(i)) => {
                if let Ok(u) = u64::try_from(*i) {
                    visitor.visit_u64(u)
                } else if let Ok(i) = i64::try_from(*i) {
                    visitor.visit_i64(i)
                } else if let Ok(u) = u128::try_from(*i) {
                    visitor.visit_u128(u)
                } else {
                    visitor.visit_i128(*i)
                }
            }
            Object::Int(int @ Integer::Big(_)) => match int.to_u128() {
                Some(u) => visitor.visit_u128(u),
                None => Err(PickleError::new(format!("the integer {int} does not fit any Rust integer"))),
            },
            Object::Float(f) => visitor.visit_f64(*f),
            Object::Str(s) => visitor.visit_borrowed_str(s),
            Object::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Object::List(ids) | Object::Tuple(ids) | Object::Set(ids) | Object::FrozenSet(ids) => {
                self.visit_items(ids, visitor)
            }
            Object::Dict(pairs) => self.visit_entries(pairs, visitor),
            Object::Builtin(_) | Object::Refused(_) => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_bool<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    deserialize_integer! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_f32<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Float(f) => visitor.visit_f64(*f),
            Object::Int(int) => match int.to_f64() {
                Some(f) => visitor.visit_f64(f),
                None => Err(PickleError::new(format!("the integer {int} is too large for a float"))),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Str(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(self.invalid_type(&"a str of one character")),
                }
            }
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Str(s) => visitor.visit_borrowed_str(s),
            // The visitor decides whether bytes will do (a `String` takes
            // them if they are UTF-8).
            Object::Bytes(b) => visitor.visit_borrowed_bytes(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Object::Str(s) => visitor.visit_borrowed_str(s),
            Object::List(ids) | Object::Tuple(ids) => self.visit_items(ids, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        match self.object() {
            Object::None => {
                self.charge()?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::None => visitor.visit_unit(),
            Object::Tuple(ids) if ids.is_empty() => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'g>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'g>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::List(ids) | Object::Tuple(ids) | Object::Set(ids) | Object::FrozenSet(ids) => {
                self.visit_items(ids, visitor)
            }
            // So that a plain `Vec<u8>` takes Python bytes.
            Object::Bytes(b) => Self::visit_bytes_as_items(b, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'g>>(self, _len: usize, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'g>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Dict(pairs) => self.visit_entries(pairs, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'g>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Dict(pairs) => self.visit_entries(pairs, visitor),
            // Fields in order, as serde allows.
            Object::List(ids) | Object::Tuple(ids) => self.visit_items(ids, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'g>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        self.charge()?;
        match self.object() {
            Object::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Object::Dict(pairs) if pairs.len() == 1 => {
                let _entered = self.enter()?;
                let (key, value) = pairs[0];
                let variant = Variant { walk: self.walk, key, value };
                let segment = key_segment(self.walk.objects.get(key));
                visitor.visit_enum(variant).map_err(|e| e.at(segment))
            }
            _ => Err(self.invalid_type(
                &format!("enum `{name}`: a str (a unit variant) or a dict of one item {{variant: value}}")
                    .as_str(),
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'g>>(self, visitor: V) -> Result<V::Value, PickleError> {
        // Nothing is copied, so nothing is walked.
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

/// The items of a list, tuple, set or frozenset.
struct Items<'w, 'g> {
    walk: &'w Walk<'g>,
    ids: std::slice::Iter<'g, Id>,
    index: usize,
}

impl<'g> SeqAccess<'g> for Items<'_, 'g> {
    type Error = PickleError;

    fn next_element_seed<T: DeserializeSeed<'g>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PickleError> {
        let Some(&id) = self.ids.next() else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        seed.deserialize(self.walk.deserializer(id)).map(Some).map_err(|e| e.at(format!("[{index}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.ids.len())
    }
}

/// The bytes of a `bytes`, as a sequence of `u8`.
struct ByteItems<'g> {
    bytes: std::slice::Iter<'g, u8>,
    index: usize,
}

impl<'g> SeqAccess<'g> for ByteItems<'g> {
    type Error = PickleError;

    fn next_element_seed<T: DeserializeSeed<'g>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PickleError> {
        let Some(&byte) = self.bytes.next() else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        seed.deserialize(byte.into_deserializer())
            .map(Some)
            .map_err(|e: PickleError| e.at(format!("[{index}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// The items of a dict.
struct Entries<'w, 'g> {
    walk: &'w Walk<'g>,
    pairs: std::slice::Iter<'g, (Id, Id)>,
    /// The value of the key just read, and its path segment.
    value: Option<(Id, String)>,
    index: usize,
}

impl<'g> MapAccess<'g> for Entries<'_, 'g> {
    type Error = PickleError;

    fn next_key_seed<K: DeserializeSeed<'g>>(&mut self, seed: K) -> Result<Option<K::Value>, PickleError> {
        let Some(&(key, value)) = self.pairs.next() else { return Ok(None) };
        self.index += 1;
        let segment = key_segment(self.walk.objects.get(key));
        let key =
            seed.deserialize(self.walk.deserializer(key)).map_err(|e| e.at(format!("{segment} (key)")))?;
        self.value = Some((value, segment));
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'g>>(&mut self, seed: V) -> Result<V::Value, PickleError> {
        let Some((value, segment)) = self.value.take() else {
            return Err(PickleError::custom("a dict value was asked for before its key"));
        };
        seed.deserialize(self.walk.deserializer(value)).map_err(|e| e.at(segment))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// An enum variant as a dict of one item `{variant: value}`.
struct Variant<'w, 'g> {
    walk: &'w Walk<'g>,
    key: Id,
    value: Id,
}

impl<'w, 'g> EnumAccess<'g> for Variant<'w, 'g> {
    type Error = PickleError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'g>>(self, seed: V) -> Result<(V::Value, Self), PickleError> {
        let variant = seed.deserialize(self.walk.deserializer(self.key))?;
        Ok((variant, self))
    }
}

impl<'g> VariantAccess<'g> for Variant<'_, 'g> {
    type Error = PickleError;

    fn unit_variant(self) -> Result<(), PickleError> {
        de::Deserialize::deserialize(self.walk.deserializer(self.value))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'g>>(self, seed: T) -> Result<T::Value, PickleError> {
        seed.deserialize(self.walk.deserializer(self.value))
    }

    fn tuple_variant<V: Visitor<'g>>(self, len: usize, visitor: V) -> Result<V::Value, PickleError> {
        de::Deserializer::deserialize_tuple(self.walk.deserializer(self.value), len, visitor)
    }

    fn struct_variant<V: Visitor<'g>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PickleError> {
        de::Deserializer::deserialize_struct(self.walk.deserializer(self.value), "", fields, visitor)
    }
}
