//! Round trips through this module's own encoder and decoder, hand-written
//! pickles of every opcode family, and hostile input.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de::MAX_DEPTH;
use super::{DEFAULT_PROTOCOL, HIGHEST_PROTOCOL, from_pickle, to_pickle};
use crate::error::Error;

/// Any builtin Python value, as `deserialize_any` sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Py {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A list, tuple, set or frozenset.
    Seq(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl<'de> Deserialize<'de> for Py {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Py, D::Error> {
        struct PyVisitor;

        impl<'de> Visitor<'de> for PyVisitor {
            type Value = Py;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any builtin Python value")
            }

            fn visit_unit<E>(self) -> Result<Py, E> {
                Ok(Py::None)
            }

            fn visit_bool<E>(self, v: bool) -> Result<Py, E> {
                Ok(Py::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Py, E> {
                Ok(Py::Int(v.into()))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Py, E> {
                Ok(Py::Int(v.into()))
            }

            fn visit_i128<E>(self, v: i128) -> Result<Py, E> {
                Ok(Py::Int(v))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Py, E> {
                i128::try_from(v).map(Py::Int).map_err(E::custom)
            }

            fn visit_f64<E>(self, v: f64) -> Result<Py, E> {
                Ok(Py::Float(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<Py, E> {
                Ok(Py::Str(v.to_owned()))
            }

            fn visit_bytes<E>(self, v: &[u8]) -> Result<Py, E> {
                Ok(Py::Bytes(v.to_vec()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Py, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Py::Seq(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Py, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = map.next_entry()? {
                    items.push(item);
                }
                Ok(Py::Dict(items))
            }
        }

        deserializer.deserialize_any(PyVisitor)
    }
}

/// Bytes that serialize as bytes, as `serde_bytes::ByteBuf` does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Bytes(pub(super) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }

            fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element()? {
                    bytes.push(b);
                }
                Ok(Bytes(bytes))
            }
        }

        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// Lists nested in lists, as deep as a pickle makes them.
#[derive(Debug, Deserialize)]
pub(super) struct Nested(pub(super) Vec<Nested>);

impl Nested {
    /// How many lists deep this is.
    pub(super) fn depth(&self) -> usize {
        1 + self.0.iter().map(Nested::depth).max().unwrap_or(0)
    }
}

/// The struct `{'x': 1, 'y': [2.5]}` decodes into.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Point {
    pub(super) x: i64,
    pub(super) y: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Shape {
    Empty,
    Circle(f64),
    Pair(i32, String),
    Rect { w: u32, h: u32 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: i8,
    big: u128,
    name: String,
    maybe: Option<i32>,
    nothing: Option<i32>,
    unit: Unit,
    meters: Meters,
    shapes: Vec<Shape>,
    pair: (u8, char),
    map: BTreeMap<String, Vec<i64>>,
    blob: Bytes,
}

fn everything() -> Everything {
    Everything {
        flag: true,
        small: -7,
        big: u128::MAX,
        name: "héllo, wörld".into(),
        maybe: Some(-3),
        nothing: None,
        unit: Unit,
        meters: Meters(2.5),
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.0),
            Shape::Pair(-1, "p".into()),
            Shape::Rect { w: 3, h: 4 },
        ],
        pair: (200, 'é'),
        map: [("a".to_string(), vec![1, -1]), ("b".to_string(), vec![])].into(),
        blob: Bytes(vec![0, 1, 255]),
    }
}

/// Asserts that `value` survives a round trip through every protocol.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(value: &T) {
    for protocol in 2..=HIGHEST_PROTOCOL {
        let bytes = to_pickle(value, protocol).unwrap();
        let back: T = from_pickle(&bytes).unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        assert_eq!(&back, value, "protocol {protocol}");
    }
}

/// The message of the codec error decoding `bytes` as a `T` gives.
fn decode_error<T: DeserializeOwned + fmt::Debug>(bytes: &[u8]) -> String {
    match from_pickle::<T>(bytes) {
        Err(Error::Codec(message)) => message,
        other => panic!("expected a codec error, got {other:?}"),
    }
}

fn py(bytes: &[u8]) -> Py {
    from_pickle(bytes).unwrap()
}

fn int(i: i128) -> Py {
    Py::Int(i)
}

fn string(s: &str) -> Py {
    Py::Str(s.into())
}

// Round trips.

#[test]
fn scalars_round_trip() {
    round_trip(&());
    round_trip(&true);
    round_trip(&false);
    for i in [0i64, 1, -1, 255, 256, 65535, 65536, i32::MAX.into(), i32::MIN.into(), i64::MAX, i64::MIN] {
        round_trip(&i);
    }
    round_trip(&i8::MIN);
    round_trip(&i16::MIN);
    round_trip(&u8::MAX);
    round_trip(&u16::MAX);
    round_trip(&u32::MAX);
    round_trip(&u64::MAX);
    for i in [i128::MIN, i128::MAX, -(1 << 70), 1 << 64] {
        round_trip(&i);
    }
    round_trip(&u128::MAX);
    round_trip(&(1u128 << 127));
    round_trip(&1.5f64);
    round_trip(&-0.0f64);
    round_trip(&f64::INFINITY);
    round_trip(&0.1f32);
    round_trip(&'x');
    round_trip(&'\u{1f600}');
    round_trip(&String::new());
    round_trip(&"héllo".to_string());
    round_trip(&Unit);
    round_trip(&Meters(-1.25));
}

#[test]
fn containers_round_trip() {
    round_trip(&Vec::<i32>::new());
    round_trip(&vec![1, 2, 3]);
    round_trip(&(0..2500).collect::<Vec<u32>>());
    round_trip(&(1u8,));
    round_trip(&(1u8, "a".to_string()));
    round_trip(&(1u8, 2u16, 3u32));
    round_trip(&(1u8, 2u16, 3u32, 4u64, 5i8));
    round_trip(&[[1u8; 3]; 2]);
    round_trip(&HashMap::from([(1, "a".to_string()), (2, "b".to_string())]));
    round_trip(&(0..2500).map(|i| (i, i * 2)).collect::<BTreeMap<i32, i32>>());
    round_trip(&BTreeMap::from([((1, 2), 3)]));
    round_trip(&BTreeMap::from([(Bytes(b"k".to_vec()), 1)]));
    round_trip(&BTreeSet::from([3, 1, 2]));
    round_trip(&Some(vec![None, Some(1)]));
    round_trip(&Point { x: 1, y: vec![2.5] });
    for shape in [Shape::Empty, Shape::Circle(2.0), Shape::Pair(1, "x".into()), Shape::Rect { w: 1, h: 2 }] {
        round_trip(&shape);
    }
    round_trip(&everything());
}

#[test]
fn large_strs_and_bytes_round_trip_across_frames() {
    round_trip(&"é".repeat(100_000));
    round_trip(&Bytes(vec![7; 100_000]));
    round_trip(&(0..20_000).map(|i| format!("item {i}")).collect::<Vec<_>>());
    let mixed = (vec![1u8; 70_000], "s".repeat(70_000), Bytes(vec![2; 70_000]), 5u8);
    let bytes = to_pickle(&(Bytes(mixed.0.clone()), &mixed.1, &mixed.2, mixed.3), 4).unwrap();
    let back: (Bytes, String, Bytes, u8) = from_pickle(&bytes).unwrap();
    assert_eq!((back.0.0, back.1, back.2, back.3), mixed);
}

#[test]
fn small_pickles_match_python_byte_for_byte() {
    // `pickle.dumps(None)`: two bytes of content get no FRAME.
    assert_eq!(to_pickle(&(), DEFAULT_PROTOCOL).unwrap(), b"\x80\x04N.");
    assert_eq!(to_pickle(&(), 5).unwrap(), b"\x80\x05N.");
    // `pickle.dumps(2**63, protocol=4)`.
    assert_eq!(
        to_pickle(&(1u64 << 63), 4).unwrap(),
        b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00."
    );
    // `pickle.dumps(-1, protocol=2)`, `pickle.dumps(-256, protocol=3)`.
    assert_eq!(to_pickle(&-1i32, 2).unwrap(), b"\x80\x02J\xff\xff\xff\xff.");
    assert_eq!(to_pickle(&-(1i64 << 40), 3).unwrap(), b"\x80\x03\x8a\x06\x00\x00\x00\x00\x00\xff.");
    // `pickle.dumps((1, True), protocol=4)` without its MEMOIZE.
    assert_eq!(
        to_pickle(&(1u8, true), 4).unwrap(),
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01\x88\x86."
    );
    // `pickle.dumps(b'\x00\xff', protocol=2)` without its BINPUTs.
    assert_eq!(
        to_pickle(&Bytes(vec![0, 255]), 2).unwrap(),
        b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R."
    );
}

#[test]
fn writing_refuses_protocols_other_than_2_to_5() {
    for protocol in [0, 1, 6, 255] {
        let Err(Error::Codec(message)) = to_pickle(&1, protocol) else { panic!("protocol {protocol}") };
        assert!(message.contains("use 2 to 5"), "{message}");
    }
}

#[test]
fn unhashable_dict_keys_are_refused_when_writing() {
    let cases = [
        to_pickle(&HashMap::from([(vec![1], 1)]), 4),
        to_pickle(&BTreeMap::from([((1, vec![1]), 1)]), 4),
        to_pickle(&BTreeMap::from([(BTreeMap::from([(1, 1)]), 1)]), 4),
    ];
    for case in cases {
        let Err(Error::Codec(message)) = case else { panic!("{case:?}") };
        assert!(message.contains("cannot hash"), "{message}");
    }
}

// Decoding into Rust types.

#[test]
fn ints_decode_into_every_width_with_range_checks() {
    let big = to_pickle(&300, 4).unwrap();
    assert_eq!(from_pickle::<u16>(&big).unwrap(), 300);
    assert_eq!(from_pickle::<i128>(&big).unwrap(), 300);
    assert_eq!(from_pickle::<f32>(&big).unwrap(), 300.0);
    assert!(decode_error::<u8>(&big).contains("the integer 300 does not fit a `u8`"));
    let negative = to_pickle(&-1, 4).unwrap();
    assert!(decode_error::<u64>(&negative).contains("does not fit a `u64`"));
    let huge = to_pickle(&u128::MAX, 4).unwrap();
    assert_eq!(from_pickle::<u128>(&huge).unwrap(), u128::MAX);
    assert!(decode_error::<i128>(&huge).contains("340282366920938463463374607431768211455"));
    assert!(decode_error::<u8>(&to_pickle("1", 4).unwrap()).contains("expected an int (for a `u8`)"));
}

#[test]
fn bytes_decode_as_a_plain_vec_and_as_bytes() {
    let bytes = to_pickle(&Bytes(vec![0, 255]), 4).unwrap();
    assert_eq!(from_pickle::<Vec<u8>>(&bytes).unwrap(), vec![0, 255]);
    assert_eq!(from_pickle::<[u8; 2]>(&bytes).unwrap(), [0, 255]);
    assert_eq!(from_pickle::<Bytes>(&bytes).unwrap(), Bytes(vec![0, 255]));
    assert!(from_pickle::<String>(&bytes).is_err());
    let utf8 = to_pickle(&Bytes(b"ok".to_vec()), 4).unwrap();
    assert_eq!(from_pickle::<String>(&utf8).unwrap(), "ok");
    assert_eq!(from_pickle::<Bytes>(&to_pickle("ok", 4).unwrap()).unwrap(), Bytes(b"ok".to_vec()));
    assert!(decode_error::<Vec<i8>>(&bytes).contains("at `[1]`"));
}

#[test]
fn sequences_decode_into_any_seq_or_tuple_or_struct() {
    let list = to_pickle(&vec![1, 2], 4).unwrap();
    assert_eq!(from_pickle::<(u8, i64)>(&list).unwrap(), (1, 2));
    assert_eq!(from_pickle::<BTreeSet<u8>>(&list).unwrap(), BTreeSet::from([1, 2]));
    #[derive(Debug, Deserialize, PartialEq)]
    struct Xy {
        x: i32,
        y: i32,
    }
    assert_eq!(from_pickle::<Xy>(&list).unwrap(), Xy { x: 1, y: 2 });
    assert!(
        decode_error::<(u8,)>(&list).contains("a Python container of 2 items, where the Rust value takes 1")
    );
    assert!(decode_error::<(u8, u8, u8)>(&list).contains("invalid length 2"));
}

#[test]
fn unit_accepts_none_and_the_empty_tuple() {
    from_pickle::<()>(b"\x80\x04N.").unwrap();
    from_pickle::<()>(b"\x80\x04).").unwrap();
    from_pickle::<Unit>(b"\x80\x04N.").unwrap();
    assert!(from_pickle::<()>(b"\x80\x04K\x00.").is_err());
}

#[test]
fn errors_give_the_path_to_the_bad_part() {
    // `{'x': 1, 'y': ['a']}`.
    let bytes = b"\x80\x04}(\x8c\x01xK\x01\x8c\x01y]\x8c\x01aau.";
    let message = decode_error::<Point>(bytes);
    assert!(message.contains("at `y[0]`: expected f64, found a Python str"), "{message}");
    let message =
        decode_error::<Vec<Shape>>(&to_pickle(&vec![BTreeMap::from([("Circle", "r")])], 4).unwrap());
    assert!(message.contains("at `[0].Circle`"), "{message}");
}

#[test]
fn enums_are_externally_tagged() {
    assert_eq!(to_pickle(&Shape::Empty, 4).unwrap(), to_pickle("Empty", 4).unwrap());
    let circle = Py::Dict(vec![(string("Circle"), Py::Float(1.0))]);
    assert_eq!(py(&to_pickle(&Shape::Circle(1.0), 4).unwrap()), circle);
    // `{'Empty': None}` is accepted for a unit variant too.
    assert_eq!(from_pickle::<Shape>(b"\x80\x04}\x8c\x05EmptyNs.").unwrap(), Shape::Empty);
    let message = decode_error::<Shape>(&to_pickle(&5, 4).unwrap());
    assert!(message.contains("a dict of one item {variant: value}"), "{message}");
    assert!(decode_error::<Shape>(&to_pickle("Square", 4).unwrap()).contains("unknown variant"));
}

#[test]
fn chars_need_a_str_of_one_character() {
    assert_eq!(from_pickle::<char>(&to_pickle("é", 4).unwrap()).unwrap(), 'é');
    assert!(decode_error::<char>(&to_pickle("ab", 4).unwrap()).contains("one character"));
}

#[test]
fn floats_take_ints_of_any_size() {
    assert_eq!(from_pickle::<f64>(&to_pickle(&(1u128 << 100), 4).unwrap()).unwrap(), 2f64.powi(100));
    // LONG1 of 2**200 and LONG4 of 2**2000.
    let mut long1 = b"\x80\x04\x8a\x1a".to_vec();
    long1.extend([0; 25]);
    long1.extend([1, b'.']);
    assert_eq!(from_pickle::<f64>(&long1).unwrap(), 2f64.powi(200));
    let mut long4 = b"\x80\x04\x8b\xfb\x00\x00\x00".to_vec();
    long4.extend([0; 250]);
    long4.extend([1, b'.']);
    assert!(decode_error::<f64>(&long4).contains("too large for a float"));
    assert!(decode_error::<u128>(&long4).contains("(a positive 251-byte integer)"));
}

// Hand-written pickles of every opcode family.

#[test]
fn protocol_0_text_opcodes() {
    let pickle = b"(lp0\nI1\naI01\naI00\naL-123456789012345678901234567890L\naF-1.5e3\na\
                   S'a\\'b\\x00'\np1\naS\"q\"\naVh\\u00e9\\U0001f600\\u005c\xff\naNag1\na.";
    assert_eq!(
        py(pickle),
        Py::Seq(vec![
            int(1),
            Py::Bool(true),
            Py::Bool(false),
            int(-123456789012345678901234567890),
            Py::Float(-1500.0),
            string("a'b\0"),
            string("q"),
            string("h\u{e9}\u{1f600}\\\u{ff}"),
            Py::None,
            string("a'b\0"),
        ])
    );
    assert_eq!(py(b"I-7\n."), int(-7));
    assert_eq!(py(b"L5\n."), int(5));
    assert_eq!(py(b"Finf\n."), Py::Float(f64::INFINITY));
    // An 8-bit string that is not UTF-8 is bytes.
    assert_eq!(py(b"S'\\xff'\n."), Py::Bytes(vec![0xff]));
    assert_eq!(py(b"(I1\nI2\ntp0\n."), Py::Seq(vec![int(1), int(2)]));
    assert_eq!(py(b"(dp0\nS'k'\np1\nI1\ns."), Py::Dict(vec![(string("k"), int(1))]));
    assert_eq!(py(b"(S'k'\nI1\nd."), Py::Dict(vec![(string("k"), int(1))]));
}

#[test]
fn protocol_1_binary_opcodes() {
    assert_eq!(py(b"K\xff."), int(255));
    assert_eq!(py(b"M\xff\xff."), int(65535));
    assert_eq!(py(b"J\x00\x00\x00\x80."), int(i32::MIN.into()));
    assert_eq!(py(b"G?\xf8\x00\x00\x00\x00\x00\x00."), Py::Float(1.5));
    assert_eq!(py(b"T\x02\x00\x00\x00ab."), string("ab"));
    assert_eq!(py(b"U\x02ab."), string("ab"));
    assert_eq!(py(b"X\x02\x00\x00\x00\xc3\xa9."), string("é"));
    assert_eq!(py(b"]q\x00(K\x01K\x02e."), Py::Seq(vec![int(1), int(2)]));
    assert_eq!(py(b"}q\x00(K\x01K\x02K\x03K\x04u."), Py::Dict(vec![(int(1), int(2)), (int(3), int(4))]));
    assert_eq!(py(b"(K\x01K\x02l."), Py::Seq(vec![int(1), int(2)]));
    assert_eq!(py(b")."), Py::Seq(vec![]));
    assert_eq!(py(b"(K\x01K\x02K\x03K\x04t."), Py::Seq(vec![int(1), int(2), int(3), int(4)]));
}

#[test]
fn protocol_2_opcodes() {
    assert_eq!(py(b"\x80\x02\x88."), Py::Bool(true));
    assert_eq!(py(b"\x80\x02\x89."), Py::Bool(false));
    assert_eq!(py(b"\x80\x02\x8a\x00."), int(0));
    assert_eq!(py(b"\x80\x02\x8a\x02\x00\xff."), int(-256));
    assert_eq!(py(b"\x80\x02\x8b\x01\x00\x00\x00\x80."), int(-128));
    assert_eq!(py(b"\x80\x02K\x01\x85."), Py::Seq(vec![int(1)]));
    assert_eq!(py(b"\x80\x02K\x01K\x02\x86."), Py::Seq(vec![int(1), int(2)]));
    assert_eq!(py(b"\x80\x02K\x01K\x02K\x03\x87."), Py::Seq(vec![int(1), int(2), int(3)]));
    // `_codecs.encode('\x00ÿ', 'latin1')`, `bytes()`, `set([1])`,
    // `frozenset([1])`, `bytearray(b'ab')`.
    assert_eq!(
        py(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R."),
        Py::Bytes(vec![0, 255])
    );
    assert_eq!(py(b"\x80\x02c__builtin__\nbytes\n)R."), Py::Bytes(vec![]));
    assert_eq!(py(b"\x80\x02c__builtin__\nset\n]K\x01a\x85R."), Py::Seq(vec![int(1)]));
    assert_eq!(py(b"\x80\x03cbuiltins\nfrozenset\n]K\x01a\x85R."), Py::Seq(vec![int(1)]));
    assert_eq!(py(b"\x80\x03cbuiltins\nbytearray\nC\x02ab\x85R."), Py::Bytes(b"ab".to_vec()));
    assert_eq!(
        py(b"\x80\x02c__builtin__\nbytearray\nX\x02\x00\x00\x00abX\x07\x00\x00\x00latin-1\x86R."),
        Py::Bytes(b"ab".to_vec())
    );
}

#[test]
fn protocol_3_bytes_opcodes() {
    assert_eq!(py(b"\x80\x03C\x02\x00\xff."), Py::Bytes(vec![0, 255]));
    assert_eq!(py(b"\x80\x03B\x01\x00\x00\x00a."), Py::Bytes(b"a".to_vec()));
}

#[test]
fn protocol_4_and_5_opcodes() {
    assert_eq!(py(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x02ab\x94."), string("ab"));
    assert_eq!(py(b"\x80\x04\x8d\x01\x00\x00\x00\x00\x00\x00\x00a."), string("a"));
    assert_eq!(py(b"\x80\x04\x8e\x01\x00\x00\x00\x00\x00\x00\x00a."), Py::Bytes(b"a".to_vec()));
    assert_eq!(py(b"\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00a."), Py::Bytes(b"a".to_vec()));
    assert_eq!(py(b"\x80\x04\x8f\x94(K\x01K\x02\x90."), Py::Seq(vec![int(1), int(2)]));
    assert_eq!(py(b"\x80\x04(K\x01\x91."), Py::Seq(vec![int(1)]));
    // STACK_GLOBAL of a whitelisted builtin.
    assert_eq!(py(b"\x80\x04\x8c\x08builtins\x8c\x03set\x93)R."), Py::Seq(vec![]));
}

#[test]
fn stack_and_memo_opcodes() {
    // POP, POP_MARK, DUP.
    assert_eq!(py(b"K\x01K\x020."), int(1));
    assert_eq!(py(b"K\x01(K\x02K\x031."), int(1));
    assert_eq!(py(b"K\x01(0."), int(1));
    assert_eq!(py(b"K\x012\x86."), Py::Seq(vec![int(1), int(1)]));
    // PUT/GET, BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE/BINGET.
    assert_eq!(py(b"K\x07p5\n0g5\n."), int(7));
    assert_eq!(py(b"K\x07q\x090h\x09."), int(7));
    assert_eq!(py(b"K\x07r\x00\x00\x01\x000j\x00\x00\x01\x00."), int(7));
    assert_eq!(py(b"\x80\x04K\x06\x94K\x07\x94h\x00h\x01\x86."), Py::Seq(vec![int(6), int(7)]));
    // A list stored in the memo, then filled: every reference sees the items.
    let shared = b"\x80\x04]\x94h\x00K\x01a\x86.";
    assert_eq!(from_pickle::<(Vec<i32>, Vec<i32>)>(shared).unwrap(), (vec![1], vec![1]));
}

// Refusals and hostile input.

#[test]
fn globals_other_than_builtins_are_refused() {
    let cases: [(&[u8], &str); 5] = [
        (b"cos\nsystem\n(S'echo pwned'\ntR.", "refusing to unpickle `os.system`"),
        (b"\x80\x04\x8c\x08__main__\x8c\x05Point\x93)\x81.", "refusing to unpickle `__main__.Point`"),
        (b"(S'echo pwned'\nios\nsystem\n.", "refusing to unpickle `os.system`"),
        (b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.", "refusing to unpickle `builtins.eval`"),
        (b"ccopy_reg\n_reconstructor\n(c__main__\nPoint\n", "refusing to unpickle `__main__.Point`"),
    ];
    for (pickle, expected) in cases {
        let message = decode_error::<Py>(pickle);
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("only builtin values are decoded"), "{message}");
    }
}

#[test]
fn code_running_opcodes_are_refused() {
    let cases: [(&[u8], &str); 9] = [
        (b"\x80\x02cbuiltins\nset\n)\x81.", "class instance"),
        (b"\x80\x04cbuiltins\nset\n)}\x92.", "class instance"),
        (b"(cbuiltins\nset\no.", "class instance"),
        (b"]}b.", "state"),
        (b"P1\n.", "persistent id"),
        (b"K\x01Q.", "persistent id"),
        (b"\x80\x02\x82\x01.", "extension registry"),
        (b"\x80\x05\x97.", "out-of-band"),
        (b"\x80\x02N)R.", "not callable"),
    ];
    for (pickle, expected) in cases {
        let message = decode_error::<Py>(pickle);
        assert!(message.contains(expected), "{message}");
    }
    let message = decode_error::<Py>(b"ccopyreg\n_reconstructor\n)R.");
    assert!(message.contains("refusing to unpickle `copyreg._reconstructor`"), "{message}");
    let message = decode_error::<Py>(b"ccopyreg\n_reconstructor\n.");
    assert!(message.contains("found a reference to `copyreg._reconstructor`"), "{message}");
    let message = decode_error::<Py>(b"\x80\x02cbuiltins\nset\n.");
    assert!(message.contains("found a Python callable `builtins.set`"), "{message}");
    assert!(
        decode_error::<Py>(
            b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1\x86R."
        )
        .contains("cannot be encoded")
    );
    assert!(decode_error::<Py>(b"\x80\x02cbuiltins\nset\nK\x01\x85R.").contains("unsupported arguments"));
}

#[test]
fn malformed_pickles_are_errors() {
    let cases: [(&[u8], &str); 19] = [
        (b"", "without a STOP"),
        (b"\x80\x04N", "without a STOP"),
        (b"\x80\x06N.", "unsupported pickle protocol 6"),
        (b"N.N", "1 bytes follow the end"),
        (b".", "more values from the stack"),
        (b"a.", "more values from the stack"),
        (b"](a.", "more values from the stack"),
        (b"0.", "more values from the stack"),
        (b"(0.", "more values from the stack"),
        (b"1.", "no MARK"),
        (b"t.", "no MARK"),
        (b"K\x01(K\x02\x86.", "more values from the stack"),
        (b"}(K\x01u.", "has no value"),
        (b"](K\x01\x90.", "adds set items to a Python list"),
        (b"}K\x01a.", "appends to a Python dict"),
        (b"h\x01.", "memo key 1 was never stored"),
        (b"I1x\n.", "not a decimal integer"),
        (b"S'abc\n.", "not quoted"),
        (b"\xff.", "invalid opcode 0xff at byte 0"),
    ];
    for (pickle, expected) in cases {
        let message = decode_error::<Py>(pickle);
        assert!(message.contains(expected), "{pickle:?}: {message}");
    }
}

#[test]
fn claimed_lengths_beyond_the_input_are_refused_before_allocating() {
    let cases: [&[u8]; 10] = [
        b"\x80\x04X\xff\xff\xff\xffab.",
        b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xffab.",
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffab.",
        b"\x80\x05\x96\xff\xff\xff\xff\xff\xff\xff\x7fab.",
        b"\x80\x04B\xff\xff\xff\xffab.",
        b"\x80\x04\x8b\xff\xff\xff\x7fab.",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
        b"T\xff\xff\xff\x7fab.",
        b"\x80\x04\x8c\x05ab.",
        b"\x80\x02C\x03ab",
    ];
    for pickle in cases {
        let message = decode_error::<Py>(pickle);
        assert!(message.contains("truncated"), "{pickle:?}: {message}");
    }
    assert!(decode_error::<Py>(b"T\xff\xff\xff\xffab.").contains("negative length -1"));
    assert!(decode_error::<Py>(b"\x80\x02\x8b\xfe\xff\xff\xffab.").contains("negative length -2"));
}

#[test]
fn every_prefix_of_a_pickle_is_an_error() {
    for protocol in 2..=HIGHEST_PROTOCOL {
        let bytes = to_pickle(&everything(), protocol).unwrap();
        for end in 0..bytes.len() {
            assert!(from_pickle::<Py>(&bytes[..end]).is_err(), "protocol {protocol}, {end} bytes");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let nested = |depth: usize| {
        let mut pickle = b"\x80\x04".to_vec();
        pickle.extend(std::iter::repeat_n(b']', depth));
        pickle.extend(std::iter::repeat_n(b'a', depth - 1));
        pickle.push(b'.');
        pickle
    };
    assert_eq!(from_pickle::<Nested>(&nested(MAX_DEPTH)).unwrap().depth(), MAX_DEPTH);
    let message = decode_error::<Py>(&nested(MAX_DEPTH + 1));
    assert!(message.contains("containers nest deeper than 256 levels"), "{message}");
    let message = decode_error::<Nested>(&nested(1_000_000));
    assert!(message.contains("deeper than 256"), "{message}");
    // Ignoring a value walks none of it.
    from_pickle::<IgnoredAny>(&nested(1_000_000)).unwrap();
    // Deep nesting by dicts and enum variants.
    let mut dicts = b"\x80\x04".to_vec();
    for _ in 0..100_000 {
        dicts.extend(b"}\x8c\x01k");
    }
    dicts.push(b'N');
    dicts.extend(std::iter::repeat_n(b's', 100_000));
    dicts.push(b'.');
    assert!(decode_error::<Py>(&dicts).contains("deeper than 256"));
}

#[test]
fn a_container_that_contains_itself_is_refused() {
    let message = decode_error::<Py>(b"\x80\x04]\x94h\x00a.");
    assert!(message.contains("contains itself"), "{message}");
    let message = decode_error::<Nested>(b"\x80\x04]2a.");
    assert!(message.contains("contains itself"), "{message}");
}

#[test]
fn memo_bombs_are_refused() {
    // x0 = b'a' * 1000; x(n+1) = [x(n), x(n)]: 2**40 KB from a few hundred bytes.
    let mut pickle = b"\x80\x04B\xe8\x03\x00\x00".to_vec();
    pickle.extend([b'a'; 1000]);
    pickle.extend(b"q\x00");
    for n in 0u8..40 {
        pickle.extend([b'h', n, b'h', n, 0x86, b'q', n + 1]);
    }
    pickle.push(b'.');
    let started = std::time::Instant::now();
    let message = decode_error::<Py>(&pickle);
    assert!(message.contains("refers to the same objects so many times"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Copies made by whitelisted calls are bounded too: set(x) many times.
    let mut pickle = b"\x80\x04]\x94(".to_vec();
    pickle.extend(std::iter::repeat_n(b'N', 10_000));
    pickle.extend(b"e\x8c\x08builtins\x8c\x03set\x93\x94");
    for _ in 0..10_000 {
        pickle.extend(b"h\x01h\x00\x85R0");
    }
    pickle.extend(b"N.");
    let message = decode_error::<Py>(&pickle);
    assert!(message.contains("copies the same objects"), "{message}");
}

#[test]
fn shared_references_decode_as_copies() {
    // [x] * 300 with x a list of 300 ints: 90,000 values from ~2 KB.
    let mut pickle = b"\x80\x04](".to_vec();
    pickle.extend(std::iter::repeat_n(*b"K\x01", 300).flatten());
    pickle.extend(b"e\x94](");
    pickle.extend(std::iter::repeat_n(*b"h\x00", 300).flatten());
    pickle.extend(b"e.");
    let decoded: Vec<Vec<u8>> = from_pickle(&pickle).unwrap();
    assert_eq!(decoded, vec![vec![1; 300]; 300]);
}

#[test]
fn random_input_never_panics() {
    // A xorshift generator: the same cases on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<Vec<u8>> =
        (2..=HIGHEST_PROTOCOL).map(|protocol| to_pickle(&everything(), protocol).unwrap()).collect();
    for round in 0..20_000 {
        let input = if round % 2 == 0 {
            let len = (next() % 64) as usize;
            (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
        } else {
            let mut input = seeds[(next() as usize) % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
            }
            input
        };
        let _ = from_pickle::<Py>(&input);
        let _ = from_pickle::<Everything>(&input);
        let _ = from_pickle::<IgnoredAny>(&input);
    }
}
