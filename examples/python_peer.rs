//! Talking to Python: this program listens on a Unix socket with an
//! authkey, starts a plain Python script that connects with
//! `multiprocessing.connection.Client`, and exchanges with it both raw
//! byte messages (`send_bytes`/`recv_bytes`) and Python objects
//! (`send_pickle`/`recv_pickle` here, `send`/`recv` there).
//!
//! Decoding what Python sends never runs code: only builtin values (dicts,
//! lists, tuples, str, bytes, numbers, None) decode, into serde types.
//!
//! Needs `python3` on the PATH.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use multiproc::Result;
use multiproc::connection::{Listener, wait};
use serde::{Deserialize, Serialize};

/// The Python side: a worker that takes jobs until told to stop.
const WORKER: &str = r#"
import sys, statistics
from multiprocessing.connection import Client

conn = Client(sys.argv[1], authkey=sys.argv[2].encode())
conn.send_bytes(b'python ' + sys.version.split()[0].encode() + b' ready')
while True:
    job = conn.recv()           # a dict, unpickled from what Rust sent
    if job is None:
        break
    xs = job['samples']
    conn.send({'name': job['name'], 'mean': statistics.fmean(xs),
               'max': max(xs), 'count': len(xs), 'tags': sorted(job['tags'])})
conn.close()
"#;

/// A job, as Python receives it: a dict.
#[derive(Debug, Serialize)]
struct Job<'a> {
    name: &'a str,
    samples: Vec<f64>,
    tags: BTreeMap<&'a str, u32>,
}

/// Python's answer, decoded from its pickle.
#[derive(Debug, PartialEq, Deserialize)]
struct Summary {
    name: String,
    mean: f64,
    max: f64,
    count: usize,
    tags: Vec<String>,
}

fn main() -> Result<()> {
    let key = "shared secret";
    // A Unix socket (mode 0600) in a new directory only this user can
    // enter (mode 0700); both are removed when the listener is dropped.
    let listener = Listener::bind_private(Some(key.as_bytes()))?;
    let address = listener.address();
    println!("listening on {address}");

    let mut python = Command::new("python3").args(["-c", WORKER, &address.to_string(), key]).spawn()?;
    // Wait for Python to connect, but not forever.
    if wait(&[&listener], Some(Duration::from_secs(30)))?.is_empty() {
        let _ = python.kill();
        panic!("python3 did not connect within 30 s");
    }
    let conn = listener.accept::<()>()?;
    let hello = String::from_utf8_lossy(&conn.recv_bytes()?).into_owned();
    println!("{hello}");
    assert!(hello.starts_with("python 3."));

    let jobs = [
        Job { name: "latency", samples: vec![1.5, 2.5, 3.5], tags: BTreeMap::from([("b", 2), ("a", 1)]) },
        Job { name: "size", samples: vec![10.0, 30.0], tags: BTreeMap::from([("kb", 1)]) },
    ];
    for job in &jobs {
        conn.send_pickle(job)?;
        let summary: Summary = conn.recv_pickle()?;
        println!("{summary:?}");
        assert_eq!(summary.name, job.name);
        assert_eq!(summary.count, job.samples.len());
        let mean = job.samples.iter().sum::<f64>() / job.samples.len() as f64;
        assert!((summary.mean - mean).abs() < 1e-12);
        assert_eq!(summary.tags, job.tags.keys().map(|k| k.to_string()).collect::<Vec<_>>());
    }
    conn.send_pickle(&None::<()>)?; // Python's None: stop
    let status = python.wait()?;
    println!("python exited with {status}");
    assert!(status.success());
    Ok(())
}
