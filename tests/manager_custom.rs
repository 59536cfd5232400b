//! User types in a manager: `#[managed]` on an impl block gives a typed
//! proxy whose methods run in the manager (MGR-08, MGR-09).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multiproc::{Error, Manager};
use serde::{Deserialize, Serialize};

use common::{LIMIT, join};

/// A counter, with a log of who added what.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    n: i64,
    by: BTreeMap<String, i64>,
}

#[multiproc::managed]
impl Counter {
    fn new() -> Counter {
        Counter::default()
    }

    /// Adds `by`, noting it under `who`.
    fn incr(&mut self, who: String, by: i64) -> i64 {
        self.n += by;
        *self.by.entry(who).or_default() += by;
        self.n
    }

    fn get(&self) -> i64 {
        self.n
    }

    fn log(&self) -> BTreeMap<String, i64> {
        self.by.clone()
    }

    fn nth_digit(&self, i: usize) -> u32 {
        self.n.to_string().chars().nth(i).expect("no such digit").to_digit(10).unwrap_or(0)
    }

    fn checked_halve(&mut self) -> Result<i64, String> {
        if self.n % 2 != 0 {
            return Err(format!("{} is odd", self.n));
        }
        self.n /= 2;
        Ok(self.n)
    }

    fn snapshot(&self) -> Self {
        Counter { n: self.n, by: self.by.clone() }
    }

    /// Holds the object for `ms` milliseconds, reading.
    fn slow_read(&self, ms: u64) -> i64 {
        std::thread::sleep(Duration::from_millis(ms));
        self.n
    }
}

#[multiproc::remote]
fn count(counter: CounterProxy, who: String, times: u32) {
    for _ in 0..times {
        counter.incr(who.clone(), 1).unwrap();
    }
}

// MGR-08: the type's methods through its proxy, from several processes;
// `&mut self` methods one at a time, so nothing is lost.
#[test]
fn a_managed_type_serves_several_processes() {
    let manager = Manager::start().unwrap();
    let counter: CounterProxy = manager.create(Counter::new()).unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| multiproc::spawn(count, (counter.clone(), format!("child {i}"), 250)).unwrap())
        .collect();
    for child in children {
        join(child).unwrap();
    }
    assert_eq!(counter.get().unwrap(), 1000);
    let log = counter.log().unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.values().all(|n| *n == 250), "{log:?}");
    assert_eq!(counter.checked_halve().unwrap(), Ok(500));
    assert_eq!(counter.incr("here".into(), 1).unwrap(), 501);
    assert_eq!(counter.checked_halve().unwrap(), Err("501 is odd".to_owned()));
    assert_eq!(counter.snapshot().unwrap().n, 501);
}

// A method that panics is its caller's `Error::Remote`; the object and the
// server go on.
#[test]
fn a_panicking_method_is_the_callers_error() {
    let manager = Manager::start().unwrap();
    let counter = manager.create(Counter { n: 42, by: BTreeMap::new() }).unwrap();
    assert_eq!(counter.nth_digit(1).unwrap(), 2);
    match counter.nth_digit(9) {
        Err(Error::Remote(e)) => {
            assert!(e.message().contains("no such digit"), "{e}");
            assert!(e.function().ends_with("Counter.nth_digit"), "{}", e.function());
        }
        other => panic!("a panic gave {other:?}"),
    }
    assert_eq!(counter.get().unwrap(), 42);
}

// `&self` methods run side by side: two slow reads from two threads take
// about one read's time.
#[test]
fn shared_methods_run_at_the_same_time() {
    let manager = Manager::start().unwrap();
    let counter = manager.create(Counter::new()).unwrap();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2).map(|_| s.spawn(|| counter.slow_read(400).unwrap())).collect();
        for r in readers {
            assert_eq!(r.join().unwrap(), 0);
        }
    });
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(400));
    assert!(took < Duration::from_millis(750), "the reads ran one after the other: {took:?}");
}

#[multiproc::remote]
fn use_published(address: multiproc::connection::Address, key: Vec<u8>) -> i64 {
    let manager = Manager::connect(address, &key).unwrap();
    let counter: CounterProxy = manager.lookup("counter").unwrap();
    counter.incr("by address".into(), 5).unwrap()
}

// A managed object published by name, reached by address and key; a
// proxy inside a managed list stays live.
#[test]
fn a_managed_object_can_be_published_and_stored() {
    let manager = Manager::builder().authkey(b"custom".to_vec()).start().unwrap();
    let counter = manager.create(Counter::new()).unwrap();
    manager.publish("counter", &counter).unwrap();
    let n = join(multiproc::spawn(use_published, (manager.address().clone(), b"custom".to_vec())).unwrap())
        .unwrap();
    assert_eq!(n, 5);
    let shelf = manager.list::<CounterProxy>().unwrap();
    shelf.push(counter.clone()).unwrap();
    shelf.get(0).unwrap().incr("from the shelf".into(), 1).unwrap();
    assert_eq!(counter.get().unwrap(), 6);
    assert!(matches!(manager.lookup::<multiproc::QueueProxy<u8>>("counter"), Err(Error::Io(_))));
    assert!(LIMIT > Duration::ZERO);
}

/// A type whose decoding in the manager panics for a negative value, and
/// whose drop panics, when asked to, in a process other than the one that
/// made it (the manager's).
#[derive(Debug, Serialize, Deserialize)]
struct Touchy {
    #[serde(deserialize_with = "non_negative")]
    n: i64,
    panic_on_drop: bool,
    maker: u32,
}

fn non_negative<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    assert!(n >= 0, "a negative Touchy");
    Ok(n)
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if self.panic_on_drop && self.maker != std::process::id() && !std::thread::panicking() {
            panic!("Touchy dropped");
        }
    }
}

#[multiproc::managed]
impl Touchy {
    fn n(&self) -> i64 {
        self.n
    }
}

// User code the manager runs outside a method (decoding the value, dropping
// it when released) may panic too: that caller's error, and the server and
// the connection go on.
#[test]
fn a_user_types_decode_and_drop_may_panic() {
    let manager = Manager::start().unwrap();
    let fine = manager.create(Touchy { n: 1, panic_on_drop: true, maker: std::process::id() }).unwrap();
    let negative = Touchy { n: -1, panic_on_drop: false, maker: std::process::id() };
    match manager.create(negative) {
        Err(Error::Remote(e)) => assert!(e.message().contains("a negative Touchy"), "{e}"),
        other => panic!("a panicking decode gave {other:?}"),
    }
    assert_eq!(fine.n().unwrap(), 1);
    let kept = manager.create(Touchy { n: 2, panic_on_drop: false, maker: std::process::id() }).unwrap();
    assert!(manager.release(&fine).unwrap());
    assert_eq!(kept.n().unwrap(), 2, "the server goes on after a drop that panicked");
}
