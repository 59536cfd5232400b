//! The objects a pickle builds, before serde sees them.
//!
//! A pickle is a program for a stack machine whose memo lets one object be
//! referred to many times, and lets a list be filled after it was stored.
//! So the decoder keeps objects in an arena ([`Objects`]) and containers
//! hold the ids of their items; the serde side walks that graph.

use std::fmt;

/// The id of an object in [`Objects`].
pub(super) type Id = usize;

/// A Python object of a builtin type.
#[derive(Debug, Clone)]
pub(super) enum Object {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int`.
    Int(Integer),
    /// A `float`.
    Float(f64),
    /// A `str` (and a protocol-0-2 8-bit string that is valid UTF-8).
    Str(String),
    /// `bytes` or `bytearray`.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Id>),
    /// A `tuple`.
    Tuple(Vec<Id>),
    /// A `dict`, as its items in insertion order.
    Dict(Vec<(Id, Id)>),
    /// A `set`.
    Set(Vec<Id>),
    /// A `frozenset`.
    FrozenSet(Vec<Id>),
    /// One of the few callables Python itself uses to pickle builtin types;
    /// it is only ever called by REDUCE, never returned.
    Builtin(Builtin),
    /// A helper of `copyreg` that comes before the class it rebuilds, held
    /// so the refusal can name that class; calling it is refused.
    Refused(String),
}

impl Object {
    /// What this object is, in Python's words, for error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Object::None => "Python None".into(),
            Object::Bool(b) => format!("Python bool {}", if *b { "True" } else { "False" }),
            Object::Int(i) => format!("Python int {i}"),
            Object::Float(f) => format!("Python float {f}"),
            Object::Str(s) => format!("Python str of length {}", s.chars().count()),
            Object::Bytes(b) => format!("Python bytes of length {}", b.len()),
            Object::List(items) => format!("Python list of {}", count(items.len())),
            Object::Tuple(items) => format!("Python tuple of {}", count(items.len())),
            Object::Dict(items) => format!("Python dict of {}", count(items.len())),
            Object::Set(items) => format!("Python set of {}", count(items.len())),
            Object::FrozenSet(items) => format!("Python frozenset of {}", count(items.len())),
            Object::Builtin(b) => format!("Python callable `{}`", b.name()),
            Object::Refused(name) => format!("reference to `{name}`, which is not decoded"),
        }
    }

    /// The approximate number of bytes this object takes once decoded,
    /// counted against the budget that stops memo bombs.
    pub(super) fn weight(&self) -> u64 {
        const NODE: u64 = 16;
        NODE + match self {
            Object::Str(s) => s.len() as u64,
            Object::Bytes(b) => b.len() as u64,
            Object::Int(Integer::Big(b)) => b.magnitude.len() as u64,
            _ => 0,
        }
    }
}

/// "1 item", "2 items".
fn count(n: usize) -> String {
    if n == 1 { "1 item".into() } else { format!("{n} items") }
}

/// The callables a pickle may name: those Python uses for builtin types
/// when a protocol has no opcode for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    /// `_codecs.encode(str, encoding)`: how protocols 0-2 write `bytes`.
    CodecsEncode,
    /// `set(iterable)`: protocols 0-3.
    Set,
    /// `frozenset(iterable)`: protocols 0-3.
    FrozenSet,
    /// `bytearray(bytes)`: protocols 0-4.
    ByteArray,
    /// `bytes()`: the empty `bytes` in protocols 0-2.
    Bytes,
}

impl Builtin {
    /// The whitelisted global `module.name`, if it is one. Python 2's
    /// `__builtin__` is the same module as Python 3's `builtins`.
    pub(super) fn lookup(module: &str, name: &str) -> Option<Builtin> {
        match (module, name) {
            ("_codecs", "encode") => Some(Builtin::CodecsEncode),
            ("builtins" | "__builtin__", "set") => Some(Builtin::Set),
            ("builtins" | "__builtin__", "frozenset") => Some(Builtin::FrozenSet),
            ("builtins" | "__builtin__", "bytearray") => Some(Builtin::ByteArray),
            ("builtins" | "__builtin__", "bytes") => Some(Builtin::Bytes),
            _ => None,
        }
    }

    /// Its Python name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Builtin::CodecsEncode => "_codecs.encode",
            Builtin::Set => "builtins.set",
            Builtin::FrozenSet => "builtins.frozenset",
            Builtin::ByteArray => "builtins.bytearray",
            Builtin::Bytes => "builtins.bytes",
        }
    }
}

/// The objects of one pickle, addressed by [`Id`].
#[derive(Debug, Default)]
pub(super) struct Objects {
    objects: Vec<Object>,
}

impl Objects {
    /// Stores `object` and returns its id.
    pub(super) fn add(&mut self, object: Object) -> Id {
        self.objects.push(object);
        self.objects.len() - 1
    }

    /// The object with id `id`, which `add` returned.
    pub(super) fn get(&self, id: Id) -> &Object {
        &self.objects[id]
    }

    /// The object with id `id`, to fill a container.
    pub(super) fn get_mut(&mut self, id: Id) -> &mut Object {
        &mut self.objects[id]
    }

    /// How many objects there are.
    pub(super) fn len(&self) -> usize {
        self.objects.len()
    }
}

/// A Python `int` of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Integer {
    /// One that fits an `i128`.
    Small(i128),
    /// One that does not.
    Big(BigInt),
}

/// An integer outside the range of `i128`, as sign and magnitude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BigInt {
    negative: bool,
    /// Little-endian, without high zero bytes.
    magnitude: Vec<u8>,
}

/// Python refuses to convert decimal strings longer than this to `int`
/// (`sys.int_info.default_max_str_digits`), so no pickle it writes has one.
const MAX_DECIMAL_DIGITS: usize = 4300;

/// Above this many magnitude bytes, an integer is shown by its size only,
/// as converting it to decimal takes quadratic time.
const MAX_SHOWN_BYTES: usize = 64;

impl Integer {
    /// The integer with this sign and little-endian magnitude.
    fn from_sign_magnitude(negative: bool, mut magnitude: Vec<u8>) -> Integer {
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
        if magnitude.len() <= 16 {
            let mut le = [0u8; 16];
            le[..magnitude.len()].copy_from_slice(&magnitude);
            let m = u128::from_le_bytes(le);
            if !negative && m <= i128::MAX as u128 {
                return Integer::Small(m as i128);
            }
            if negative && m <= i128::MIN.unsigned_abs() {
                return Integer::Small((m as i128).wrapping_neg());
            }
        }
        Integer::Big(BigInt { negative, magnitude })
    }

    /// The integer whose little-endian two's complement is `bytes` (LONG1,
    /// LONG4); empty is zero.
    pub(super) fn from_twos_complement(bytes: &[u8]) -> Integer {
        let Some(&last) = bytes.last() else { return Integer::Small(0) };
        let negative = last & 0x80 != 0;
        if bytes.len() <= 16 {
            let mut le = if negative { [0xff; 16] } else { [0; 16] };
            le[..bytes.len()].copy_from_slice(bytes);
            return Integer::Small(i128::from_le_bytes(le));
        }
        let mut magnitude = bytes.to_vec();
        if negative {
            // Negate: invert every bit, then add one.
            let mut carry = true;
            for b in &mut magnitude {
                let (sum, overflow) = (!*b).overflowing_add(u8::from(carry));
                *b = sum;
                carry = overflow;
            }
        }
        Integer::from_sign_magnitude(negative, magnitude)
    }

    /// Parses a decimal integer as protocol 0 writes it (`INT`, `LONG`
    /// without its `L`): an optional sign, then digits.
    pub(super) fn parse_decimal(text: &str) -> Result<Integer, String> {
        let text = text.trim();
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) {
            return Err(format!("`{}` is not a decimal integer", text.escape_debug()));
        }
        if digits.len() > MAX_DECIMAL_DIGITS {
            return Err(format!(
                "a decimal integer of {} digits is over Python's limit of {MAX_DECIMAL_DIGITS}",
                digits.len()
            ));
        }
        if let Ok(small) = text.parse::<i128>() {
            return Ok(Integer::Small(small));
        }
        let mut magnitude: Vec<u8> = Vec::new();
        for d in digits.bytes() {
            let mut carry = u32::from(d - b'0');
            for b in &mut magnitude {
                let v = u32::from(*b) * 10 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
            if carry != 0 {
                magnitude.push(carry as u8);
            }
        }
        Ok(Integer::from_sign_magnitude(negative, magnitude))
    }

    /// Its value as a `u128`, if it has one.
    pub(super) fn to_u128(&self) -> Option<u128> {
        match self {
            Integer::Small(i) => u128::try_from(*i).ok(),
            Integer::Big(b) if !b.negative && b.magnitude.len() <= 16 => {
                let mut le = [0u8; 16];
                le[..b.magnitude.len()].copy_from_slice(&b.magnitude);
                Some(u128::from_le_bytes(le))
            }
            Integer::Big(_) => None,
        }
    }

    /// The nearest `f64`, or `None` where Python's `float(i)` overflows.
    pub(super) fn to_f64(&self) -> Option<f64> {
        let f = match self {
            Integer::Small(i) => *i as f64,
            Integer::Big(b) => {
                let m = b.magnitude.iter().rev().fold(0.0f64, |acc, &byte| acc * 256.0 + f64::from(byte));
                if b.negative { -m } else { m }
            }
        };
        f.is_finite().then_some(f)
    }
}

impl fmt::Display for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Integer::Small(i) => write!(f, "{i}"),
            Integer::Big(b) if b.magnitude.len() > MAX_SHOWN_BYTES => {
                let sign = if b.negative { "negative" } else { "positive" };
                write!(f, "(a {sign} {}-byte integer)", b.magnitude.len())
            }
            Integer::Big(b) => {
                // Little-endian base-1e9 limbs, divided down to decimal.
                let mut limbs: Vec<u32> = Vec::new();
                for &byte in b.magnitude.iter().rev() {
                    let mut carry = u64::from(byte);
                    for limb in &mut limbs {
                        let v = u64::from(*limb) * 256 + carry;
                        *limb = (v % 1_000_000_000) as u32;
                        carry = v / 1_000_000_000;
                    }
                    while carry != 0 {
                        limbs.push((carry % 1_000_000_000) as u32);
                        carry /= 1_000_000_000;
                    }
                }
                if b.negative {
                    f.write_str("-")?;
                }
                let mut limbs = limbs.iter().rev();
                if let Some(first) = limbs.next() {
                    write!(f, "{first}")?;
                }
                limbs.try_for_each(|limb| write!(f, "{limb:09}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twos_complement_decodes_like_python() {
        assert_eq!(Integer::from_twos_complement(&[]), Integer::Small(0));
        assert_eq!(Integer::from_twos_complement(&[0xff]), Integer::Small(-1));
        assert_eq!(Integer::from_twos_complement(&[0x00, 0xff]), Integer::Small(-256));
        let two_63 = [0, 0, 0, 0, 0, 0, 0, 0x80, 0];
        assert_eq!(Integer::from_twos_complement(&two_63), Integer::Small(1 << 63));
        let mut u128_max = [0xffu8; 17];
        u128_max[16] = 0;
        assert_eq!(Integer::from_twos_complement(&u128_max).to_u128(), Some(u128::MAX));
        let mut minus_2_128 = [0u8; 17];
        minus_2_128[16] = 0xff;
        assert_eq!(
            Integer::from_twos_complement(&minus_2_128).to_string(),
            "-340282366920938463463374607431768211456"
        );
    }

    #[test]
    fn decimals_of_any_size_parse() {
        assert_eq!(Integer::parse_decimal("-42").unwrap(), Integer::Small(-42));
        let big = "-340282366920938463463374607431768211456";
        assert_eq!(Integer::parse_decimal(big).unwrap().to_string(), big);
        let bigger = "123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(Integer::parse_decimal(bigger).unwrap().to_string(), bigger);
        assert_eq!(Integer::parse_decimal(&"9".repeat(400)).unwrap().to_f64(), None);
        assert!(Integer::parse_decimal("12a").is_err());
        assert!(Integer::parse_decimal("").is_err());
        assert!(Integer::parse_decimal(&"1".repeat(5000)).is_err());
    }
}
