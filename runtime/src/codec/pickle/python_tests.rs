//! Interop with the real CPython: pickles Python writes decode here, and
//! pickles written here load in Python. `python3` must be on the PATH (CI
//! installs it); without it these tests fail rather than skip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::tests::{Bytes, Nested, Point, Py, Shape};
use super::{HIGHEST_PROTOCOL, from_pickle, to_pickle};
use crate::error::Error;

/// How long one Python run may take before it is killed.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `python3 -c script` with `stdin`, and returns what it printed.
/// Panics if Python is missing, fails, or overruns [`PYTHON_TIMEOUT`].
fn python(script: &str, stdin: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("these tests need `python3` on the PATH: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let error_reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).map(|_| err)
    });
    let deadline = Instant::now() + PYTHON_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python3 ran for over {PYTHON_TIMEOUT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap().unwrap();
    let out = reader.join().unwrap().unwrap();
    let err = error_reader.join().unwrap().unwrap();
    assert!(status.success(), "python3 failed ({status}):\n{err}");
    out
}

/// Decodes a hex string as Python's `bytes.hex()` writes it.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Values Python pickles with every protocol, printed as `name protocol hex`.
const PYTHON_WRITES: &str = r#"
import pickle
shared = [1, 2]
nested = []
for _ in range(99):
    nested = [nested]
cases = {
    'none': None, 'true': True, 'zero': 0, 'minus_one': -1, 'u8max': 255, 'big16': 65536,
    'two63': 2**63, 'neg70': -(2**70), 'float': 1.5, 'str': 'h\u00e9llo', 'bytes': b'\x00\xff',
    'bytearray': bytearray(b'ab'), 'list': [1, 2], 'tuple': (1, 'a'), 'dict': {1: 'a'},
    'struct': {'x': 1, 'y': [2.5]}, 'set': {1, 2}, 'frozenset': frozenset([3, 4]),
    'nested': nested, 'shared': [shared, shared], 'empty_bytes': b'', 'big_str': 'x' * 100000,
    'enum': {'Pair': (7, 'seven')}, 'unit_variant': 'Empty', 'empty_set': set(),
}
for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
    for name, value in cases.items():
        print(name, protocol, pickle.dumps(value, protocol=protocol).hex())
"#;

#[test]
fn pickles_from_python_decode() {
    let out = python(PYTHON_WRITES, "");
    let mut pickles: HashMap<(String, u8), Vec<u8>> = HashMap::new();
    for line in out.lines() {
        let mut fields = line.split(' ');
        let (Some(name), Some(protocol), Some(hex)) = (fields.next(), fields.next(), fields.next()) else {
            panic!("unexpected line from python3: {line}");
        };
        pickles.insert((name.to_owned(), protocol.parse().unwrap()), unhex(hex));
    }
    for protocol in 0..=HIGHEST_PROTOCOL {
        let get = |name: &str| -> &[u8] { &pickles[&(name.to_owned(), protocol)] };
        let context = |name: &str| format!("`{name}` pickled with protocol {protocol}");
        macro_rules! check {
            ($name:literal as $ty:ty, $expected:expr) => {
                let decoded: $ty =
                    from_pickle(get($name)).unwrap_or_else(|e| panic!("{}: {e}", context($name)));
                assert_eq!(decoded, $expected, "{}", context($name));
            };
            ($name:literal as $ty:ty, error $message:literal) => {
                match from_pickle::<$ty>(get($name)) {
                    Err(Error::Codec(m)) => assert!(m.contains($message), "{}: {m}", context($name)),
                    other => panic!("{}: expected an error, got {other:?}", context($name)),
                }
            };
        }
        check!("none" as Option<i32>, None);
        check!("none" as (), ());
        check!("true" as bool, true);
        check!("zero" as i32, 0);
        check!("minus_one" as i8, -1);
        check!("minus_one" as u8, error "does not fit a `u8`");
        check!("u8max" as u8, 255);
        check!("u8max" as i8, error "the integer 255 does not fit a `i8`");
        check!("big16" as u32, 65536);
        check!("big16" as f64, 65536.0);
        check!("two63" as u64, 1 << 63);
        check!("two63" as i64, error "the integer 9223372036854775808 does not fit a `i64`");
        check!("neg70" as i128, -(1 << 70));
        check!("neg70" as i64, error "the integer -1180591620717411303424 does not fit a `i64`");
        check!("float" as f64, 1.5);
        check!("float" as f32, 1.5);
        check!("str" as String, "héllo");
        check!("bytes" as Vec<u8>, vec![0, 255]);
        check!("bytes" as Bytes, Bytes(vec![0, 255]));
        check!("empty_bytes" as Vec<u8>, Vec::<u8>::new());
        check!("bytearray" as Vec<u8>, b"ab".to_vec());
        check!("list" as Vec<i64>, vec![1, 2]);
        check!("list" as [u8; 2], [1, 2]);
        check!("tuple" as (i32, String), (1, "a".to_owned()));
        check!("dict" as HashMap<i32, String>, HashMap::from([(1, "a".to_owned())]));
        check!("struct" as Point, Point { x: 1, y: vec![2.5] });
        check!("set" as BTreeSet<i32>, BTreeSet::from([1, 2]));
        check!("empty_set" as Vec<i32>, Vec::<i32>::new());
        check!("frozenset" as BTreeSet<u8>, BTreeSet::from([3, 4]));
        check!("shared" as Vec<Vec<i32>>, vec![vec![1, 2], vec![1, 2]]);
        check!("big_str" as String, "x".repeat(100_000));
        check!("enum" as Shape, Shape::Pair(7, "seven".into()));
        check!("unit_variant" as Shape, Shape::Empty);
        let nested: Nested =
            from_pickle(get("nested")).unwrap_or_else(|e| panic!("{}: {e}", context("nested")));
        assert_eq!(nested.depth(), 100, "{}", context("nested"));
        assert_eq!(
            from_pickle::<Py>(get("struct")).unwrap(),
            Py::Dict(vec![
                (Py::Str("x".into()), Py::Int(1)),
                (Py::Str("y".into()), Py::Seq(vec![Py::Float(2.5)])),
            ]),
        );
    }
}

/// Reads `protocol<TAB>hex<TAB>expression` lines and checks that each
/// pickle loads (with the C and the stricter pure-Python unpickler) to a
/// value equal to the expression, with the same types throughout.
const PYTHON_READS: &str = r#"
import pickle, sys
def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b
for line in sys.stdin:
    protocol, data, expression = line.rstrip('\n').split('\t')
    data = bytes.fromhex(data)
    expected = eval(expression)
    for loads in (pickle.loads, pickle._loads):
        try:
            value = loads(data)
        except Exception as e:
            print('FAIL', protocol, expression, loads.__name__, repr(e))
            continue
        if same(value, expected):
            print('OK')
        else:
            print('FAIL', protocol, expression, loads.__name__, repr(value)[:200])
"#;

#[derive(Serialize)]
struct WithNone {
    a: Option<i32>,
    b: (),
}

#[test]
fn pickles_to_python_load() {
    let mut lines = String::new();
    let mut count = 0;
    let mut case = |value: &dyn erased::Pickle, expression: &str| {
        for protocol in 2..=HIGHEST_PROTOCOL {
            let bytes = value.pickle(protocol);
            let _ = writeln!(lines, "{protocol}\t{}\t{expression}", hex(&bytes));
            count += 2;
        }
    };
    case(&(), "None");
    case(&true, "True");
    case(&false, "False");
    case(&0u8, "0");
    case(&-1i8, "-1");
    case(&255u8, "255");
    case(&256u16, "256");
    case(&65535u16, "65535");
    case(&65536u32, "65536");
    case(&i32::MIN, "-2**31");
    case(&i64::MIN, "-2**63");
    case(&u64::MAX, "2**64 - 1");
    case(&i128::MIN, "-2**127");
    case(&u128::MAX, "2**128 - 1");
    case(&(1u128 << 127), "2**127");
    case(&1.5f64, "1.5");
    case(&0.25f32, "0.25");
    case(&f64::NEG_INFINITY, "float('-inf')");
    case(&'x', "'x'");
    case(&"héllo \u{1f600}", "'h\\xe9llo \\U0001f600'");
    case(&"y".repeat(300), "'y' * 300");
    case(&"z".repeat(100_000), "'z' * 100000");
    case(&Bytes(vec![0, 255]), "b'\\x00\\xff'");
    case(&Bytes(vec![]), "b''");
    case(&Bytes(vec![9; 300]), "b'\\x09' * 300");
    case(&Bytes(vec![9; 100_000]), "b'\\x09' * 100000");
    case(&vec![0u8, 255], "[0, 255]");
    case(&Vec::<i32>::new(), "[]");
    case(&(0..2500).collect::<Vec<u32>>(), "list(range(2500))");
    case(&(1u8,), "(1,)");
    case(&(1u8, "a"), "(1, 'a')");
    case(&(1u8, 2u8, 3u8), "(1, 2, 3)");
    case(&(1u8, 2u8, 3u8, 4u8), "(1, 2, 3, 4)");
    case(&BTreeMap::from([(1, "a")]), "{1: 'a'}");
    case(&(0..2500).map(|i| (i, -i)).collect::<BTreeMap<i32, i32>>(), "{i: -i for i in range(2500)}");
    case(&BTreeMap::from([((1, 2), 3)]), "{(1, 2): 3}");
    case(&BTreeMap::from([(Bytes(b"k".to_vec()), 1)]), "{b'k': 1}");
    case(&Point { x: 1, y: vec![2.5] }, "{'x': 1, 'y': [2.5]}");
    case(&WithNone { a: None, b: () }, "{'a': None, 'b': None}");
    case(&Some(3), "3");
    case(&Shape::Empty, "'Empty'");
    case(&Shape::Circle(1.0), "{'Circle': 1.0}");
    case(&Shape::Pair(1, "x".into()), "{'Pair': (1, 'x')}");
    case(&Shape::Rect { w: 1, h: 2 }, "{'Rect': {'w': 1, 'h': 2}}");
    case(
        &(0..20_000).map(|i| format!("item {i}")).collect::<Vec<_>>(),
        "['item %d' % i for i in range(20000)]",
    );
    case(&vec![vec![vec![1u8]]], "[[[1]]]");
    let out = python(PYTHON_READS, &lines);
    let failures: Vec<&str> = out.lines().filter(|line| *line != "OK").collect();
    assert!(failures.is_empty(), "Python did not load these as expected:\n{}", failures.join("\n"));
    assert_eq!(out.lines().count(), count);
}

/// Values of different types behind one `dyn`.
mod erased {
    use super::{Serialize, to_pickle};

    pub(super) trait Pickle {
        fn pickle(&self, protocol: u8) -> Vec<u8>;
    }

    impl<T: Serialize + ?Sized> Pickle for T {
        fn pickle(&self, protocol: u8) -> Vec<u8> {
            to_pickle(self, protocol).unwrap()
        }
    }
}

/// Pickles Python writes for things other than builtin values.
const PYTHON_WRITES_CODE: &str = r#"
import os, pickle
class Point:
    def __init__(self):
        self.x = 1
print('class', 0, pickle.dumps(Point, protocol=0).hex())
for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
    print('instance', protocol, pickle.dumps(Point(), protocol=protocol).hex())
    print('system', protocol, pickle.dumps(os.system, protocol=protocol).hex())
    print('call', protocol, pickle.dumps([1, Point()], protocol=protocol).hex())
"#;

#[test]
fn python_classes_and_functions_are_refused() {
    let out = python(PYTHON_WRITES_CODE, "");
    let mut seen = 0;
    for line in out.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [what, protocol, hex] = fields[..] else { panic!("unexpected line from python3: {line}") };
        let expected = match what {
            "system" => "refusing to unpickle `posix.system`: only builtin values are decoded",
            _ => "refusing to unpickle `__main__.Point`: only builtin values are decoded",
        };
        match from_pickle::<Py>(&unhex(hex)) {
            Err(Error::Codec(message)) => {
                assert!(message.contains(expected), "{what}, protocol {protocol}: {message}")
            }
            other => panic!("{what}, protocol {protocol}: expected a refusal, got {other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 1 + 3 * 6);
}
