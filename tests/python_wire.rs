//! Wire compatibility with CPython's `multiprocessing.connection`, tested
//! against the real `python3`: a Python Client against our Listener and our
//! Client against a Python Listener, over TCP and a Unix socket, with the
//! authkey handshake (CPython 3.11 answers with the legacy HMAC-MD5, 3.12+
//! with `{sha256}`; ours speaks both).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::Error;
use multiproc::connection::{Address, Client, Listener, wait};
use serde::{Deserialize, Serialize};

const KEY: &[u8] = b"wire-key";

/// Messages exchanged each way: empty, small, and 1 MiB.
fn messages() -> Vec<Vec<u8>> {
    vec![Vec::new(), b"small".to_vec(), (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()]
}

/// Python's side of an address given as text.
const PY_ADDRESS: &str = r#"
def parse(text):
    if text.startswith('/'):
        return text
    host, port = text.rsplit(':', 1)
    return (host, int(port))
"#;

fn python(script: &str, args: &[&str]) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(format!("{PY_ADDRESS}\n{script}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (CI installs it)")
}

/// Waits for `child` for at most 30 s, killing it on overrun.
fn finish(mut child: Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("python3 did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Connects to our listener, receives each message and sends it back
/// reversed.
const PY_CLIENT: &str = r#"
import sys
from multiprocessing.connection import Client
key = None if sys.argv[2] == '-' else sys.argv[2].encode()
c = Client(parse(sys.argv[1]), authkey=key)
for _ in range(int(sys.argv[3])):
    c.send_bytes(c.recv_bytes()[::-1])
c.close()
"#;

/// Listens, prints its address, accepts one connection, and echoes each
/// message back reversed.
const PY_LISTENER: &str = r#"
import sys
from multiprocessing.connection import Listener
key = None if sys.argv[2] == '-' else sys.argv[2].encode()
l = Listener(parse(sys.argv[1]), authkey=key)
a = l.address
print(a if isinstance(a, str) else '%s:%d' % a, flush=True)
c = l.accept()
for _ in range(int(sys.argv[3])):
    c.send_bytes(c.recv_bytes()[::-1])
c.close()
l.close()
"#;

/// Accepts one connection, failing the test if none comes within 30 s.
fn accept_within<T>(listener: &Listener) -> multiproc::Connection<T> {
    let ready = wait(&[listener], Some(Duration::from_secs(30))).unwrap();
    assert_eq!(ready, [0], "python3 did not connect within 30 s");
    listener.accept().unwrap()
}

fn unix_path(tag: &str) -> String {
    format!("/tmp/mp-wire-{}-{tag}.sock", std::process::id())
}

#[test]
fn a_python_client_talks_to_our_listener() {
    for (address, key) in [
        ("127.0.0.1:0".to_owned(), Some(KEY)),
        ("127.0.0.1:0".to_owned(), None),
        (unix_path("ours"), Some(KEY)),
    ] {
        let listener = Listener::bind(address.as_str(), key).unwrap();
        let key_arg = key.map_or("-".to_owned(), |k| String::from_utf8(k.to_vec()).unwrap());
        let n = messages().len().to_string();
        let py = python(PY_CLIENT, &[&listener.address().to_string(), &key_arg, &n]);
        let conn = accept_within::<()>(&listener);
        for m in messages() {
            conn.send_bytes(&m).unwrap();
            let back = conn.recv_bytes().unwrap();
            assert_eq!(back, m.iter().rev().copied().collect::<Vec<_>>(), "{address}: {} bytes", m.len());
        }
        assert!(matches!(conn.recv_bytes(), Err(Error::Closed)), "Python closed its end");
        let (code, err) = finish(py);
        assert_eq!(code, 0, "{address}: {err}");
    }
}

#[test]
fn our_client_talks_to_a_python_listener() {
    for (address, key) in [
        ("127.0.0.1:0".to_owned(), Some(KEY)),
        ("127.0.0.1:0".to_owned(), None),
        (unix_path("theirs"), Some(KEY)),
    ] {
        let key_arg = key.map_or("-".to_owned(), |k| String::from_utf8(k.to_vec()).unwrap());
        let n = messages().len().to_string();
        let mut py = python(PY_LISTENER, &[&address, &key_arg, &n]);
        let mut line = String::new();
        BufReader::new(py.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let bound: Address = line.trim().parse().unwrap();
        let conn = Client::connect::<()>(&bound, key).unwrap();
        for m in messages() {
            conn.send_bytes(&m).unwrap();
            assert_eq!(conn.recv_bytes().unwrap(), m.iter().rev().copied().collect::<Vec<_>>(), "{address}");
        }
        let (code, err) = finish(py);
        assert_eq!(code, 0, "{address}: {err}");
        let _ = std::fs::remove_file(&address);
    }
}

#[test]
fn a_wrong_key_is_refused_by_python_and_by_us() {
    // Python client, wrong key, against our listener.
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let py = python(PY_CLIENT, &[&listener.address().to_string(), "not-the-key", "0"]);
    assert_eq!(wait(&[&listener], Some(Duration::from_secs(30))).unwrap(), [0]);
    assert!(matches!(listener.accept::<()>(), Err(Error::Auth(_))));
    let (code, err) = finish(py);
    assert_ne!(code, 0);
    assert!(err.contains("AuthenticationError"), "{err}");

    // Our client, wrong key, against a Python listener.
    let mut py = python(PY_LISTENER, &["127.0.0.1:0", "the-key", "0"]);
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let result = Client::connect::<()>(line.trim(), Some(b"not-the-key"));
    assert!(matches!(result, Err(Error::Auth(_))), "{result:?}");
    let (code, err) = finish(py);
    assert_ne!(code, 0);
    assert!(err.contains("AuthenticationError"), "{err}");
}

/// A job as a Rust program and a Python one both see it: a dict with these
/// keys in Python.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    name: String,
    n: u32,
    weights: Vec<f64>,
    tags: BTreeMap<String, i64>,
    note: Option<String>,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    pair: (i32, bool),
}

/// Receives a job with `recv()`, checks it is the dict Python should see,
/// and sends back the job done; then sends values only Python makes, and
/// objects that must be refused.
const PY_PICKLE_PEER: &str = r#"
import sys
from multiprocessing.connection import Client
c = Client(parse(sys.argv[1]), authkey=sys.argv[2].encode())
job = c.recv()
assert job == {'name': 'resize', 'n': 3, 'weights': [0.5, 1.5], 'tags': {'a': 1, 'b': -2},
               'note': None, 'data': b'\x00\xff', 'pair': (-7, True)}, job
assert type(job['pair']) is tuple and type(job['data']) is bytes, job
job['name'] = job['name'].upper()
job['n'] *= 2
job['weights'].reverse()
job['tags']['c'] = 2 ** 40
job['note'] = 'done \u2713'
job['data'] = bytes(reversed(job['data']))
c.send(job)
c.send((2 ** 70, {1, 2, 3}, frozenset(), [None, 'x'], bytearray(b'ab')))

class Custom:
    pass
c.send(Custom())

import os
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + sys.argv[3],))
c.send(Evil())
c.send('still here')
c.close()
"#;

#[test]
fn pickled_values_cross_both_ways_with_python() {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let marker = format!("/tmp/mp-wire-{}-evil", std::process::id());
    let py = python(PY_PICKLE_PEER, &[&listener.address().to_string(), "wire-key", &marker]);
    let conn = accept_within::<()>(&listener);

    let job = Job {
        name: "resize".into(),
        n: 3,
        weights: vec![0.5, 1.5],
        tags: BTreeMap::from([("a".into(), 1), ("b".into(), -2)]),
        note: None,
        data: vec![0x00, 0xff],
        pair: (-7, true),
    };
    conn.send_pickle(&job).unwrap();
    let done: Job = conn.recv_pickle().unwrap();
    assert_eq!(
        done,
        Job {
            name: "RESIZE".into(),
            n: 6,
            weights: vec![1.5, 0.5],
            tags: BTreeMap::from([("a".into(), 1), ("b".into(), -2), ("c".into(), 1 << 40)]),
            note: Some("done \u{2713}".into()),
            data: vec![0xff, 0x00],
            pair: (-7, true),
        }
    );

    type Mixed = (u128, Vec<u8>, Vec<i32>, Vec<Option<String>>, serde_bytes::ByteBuf);
    let (big, set, empty, list, bytes): Mixed = conn.recv_pickle().unwrap();
    assert_eq!(big, 1 << 70);
    assert_eq!(set, [1, 2, 3]);
    assert!(empty.is_empty());
    assert_eq!(list, [None, Some("x".to_owned())]);
    assert_eq!(bytes.as_slice(), b"ab");

    // A class that is not a builtin is refused by name, and nothing runs.
    match conn.recv_pickle::<()>() {
        Err(Error::Codec(msg)) => assert!(msg.contains("Custom"), "{msg}"),
        other => panic!("a custom class must be refused, got {other:?}"),
    }
    match conn.recv_pickle::<()>() {
        Err(Error::Codec(msg)) => assert!(msg.contains("system"), "{msg}"),
        other => panic!("os.system must be refused, got {other:?}"),
    }
    assert!(!std::path::Path::new(&marker).exists(), "decoding a pickle ran a command");
    // The stream goes on after a refused pickle.
    assert_eq!(conn.recv_pickle::<String>().unwrap(), "still here");
    assert!(matches!(conn.recv_pickle::<()>(), Err(Error::Closed)));
    let (code, err) = finish(py);
    assert_eq!(code, 0, "{err}");
}
