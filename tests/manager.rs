//! Managers: a server process of shared objects and the proxies that call
//! it (MGR-* of ../shared/spec/cpython-conformance.md), with the faults
//! where CPython hangs or loses data.

mod common;

use std::time::{Duration, Instant};

use multiproc::connection::Client;
use multiproc::{
    Context, DictProxy, Error, JoinableQueueProxy, ListProxy, Manager, Namespace, Queue, QueueProxy,
    StartMethod,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use common::{LIMIT, join};

/// The seed notes' keys: an int, a string and a float in one dict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Key {
    Int(i64),
    Str(String),
    Float(f64),
}

#[multiproc::remote]
fn fill_and_reverse(d: DictProxy<Key, Option<String>>, l: ListProxy<i32>) {
    d.insert(Key::Int(1), Some("1".to_owned())).unwrap();
    d.insert(Key::Str("2".to_owned()), Some("2".to_owned())).unwrap();
    d.insert(Key::Float(0.25), None).unwrap();
    l.reverse().unwrap();
}

// The seed notes' example, under every start method: what the child does
// to the dict and the list, the parent sees.
#[test]
fn a_child_changes_the_managers_dict_and_list() {
    let manager = Manager::start().unwrap();
    for method in StartMethod::ALL {
        let d = manager.dict::<Key, Option<String>>().unwrap();
        let l = manager.list_from(0..10).unwrap();
        join(Context::new(method).spawn(fill_and_reverse, (d.clone(), l.clone())).unwrap()).unwrap();
        assert_eq!(
            d.items().unwrap(),
            vec![
                (Key::Int(1), Some("1".to_owned())),
                (Key::Str("2".to_owned()), Some("2".to_owned())),
                (Key::Float(0.25), None),
            ],
            "{method}"
        );
        assert_eq!(d.get(&Key::Float(0.25)).unwrap(), Some(None));
        assert_eq!(d.get(&Key::Int(2)).unwrap(), None);
        assert_eq!(l.to_vec().unwrap(), (0..10).rev().collect::<Vec<_>>(), "{method}");
    }
    manager.shutdown().unwrap();
}

// MGR-03, MGR-17: the dict's own operations.
#[test]
fn dict_operations() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.insert("a".into(), 1).unwrap(), None);
    assert_eq!(d.insert("b".into(), 2).unwrap(), None);
    assert_eq!(d.insert("a".into(), 10).unwrap(), Some(1), "insert returns the old value");
    assert_eq!(d.len().unwrap(), 2);
    assert!(d.contains_key(&"b".into()).unwrap());
    assert_eq!(d.keys().unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(d.values().unwrap(), vec![10, 2]);
    assert_eq!(d.to_hashmap().unwrap(), [("a".to_owned(), 10), ("b".to_owned(), 2)].into_iter().collect());
    assert_eq!(d.get_or_insert("c".into(), 3).unwrap(), 3);
    assert_eq!(d.get_or_insert("c".into(), 4).unwrap(), 3, "an existing value stays");
    assert_eq!(d.pop_item().unwrap(), Some(("c".to_owned(), 3)));
    assert_eq!(d.remove(&"a".into()).unwrap(), Some(10));
    assert_eq!(d.remove(&"a".into()).unwrap(), None);
    assert_eq!(d.compare_and_swap(&"b".into(), Some(&5), Some(6)).unwrap(), Err(Some(2)));
    assert_eq!(d.compare_and_swap(&"b".into(), Some(&2), Some(6)).unwrap(), Ok(()));
    assert_eq!(d.compare_and_swap(&"z".into(), None, Some(1)).unwrap(), Ok(()));
    assert_eq!(d.compare_and_swap(&"z".into(), Some(&1), None).unwrap(), Ok(()), "None removes");
    assert_eq!(d.items().unwrap(), vec![("b".to_owned(), 6)]);
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    // Many entries in and out keep the order of insertion.
    for i in 0..100 {
        d.insert(format!("k{i}"), i).unwrap();
    }
    for i in (0..100).filter(|i| i % 3 != 0) {
        d.remove(&format!("k{i}")).unwrap();
    }
    let kept: Vec<i64> = d.values().unwrap();
    assert_eq!(kept, (0..100).filter(|i| i % 3 == 0).collect::<Vec<_>>());
    assert_eq!(d.get(&"k99".into()).unwrap(), Some(99));
}

// MGR-16: the list's own operations; a bad index is the caller's
// `Error::Remote`, and the server goes on serving.
#[test]
fn list_operations_and_a_bad_index() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<String>().unwrap();
    l.push("a".into()).unwrap();
    l.extend(["b".to_owned(), "c".to_owned()]).unwrap();
    l.insert(0, "z".into()).unwrap();
    assert_eq!(l.len().unwrap(), 4);
    assert_eq!(l.get(0).unwrap(), "z");
    l.set(0, "y".into()).unwrap();
    assert_eq!(l.remove(0).unwrap(), "y");
    assert_eq!(l.pop().unwrap(), Some("c".to_owned()));
    assert_eq!(l.to_vec().unwrap(), vec!["a".to_owned(), "b".to_owned()]);

    match l.get(7) {
        Err(Error::Remote(e)) => {
            assert!(e.message().contains("index out of bounds"), "{e}");
            assert_eq!(e.function(), "list.get");
            assert_eq!(Some(e.pid()), manager.pid());
        }
        other => panic!("a bad index gave {other:?}"),
    }
    assert!(matches!(l.set(9, "x".into()), Err(Error::Remote(_))));
    assert!(matches!(l.remove(2), Err(Error::Remote(_))));
    assert!(matches!(l.insert(3, "x".into()), Err(Error::Remote(_))));
    assert_eq!(l.to_vec().unwrap(), vec!["a".to_owned(), "b".to_owned()], "the list is as it was");
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
    assert_eq!(l.pop().unwrap(), None);
}

// MGR-07: a namespace's names.
#[test]
fn namespace_names_and_values() {
    let manager = Manager::start().unwrap();
    let ns: Namespace = manager.namespace().unwrap();
    ns.set("name", "Bob").unwrap();
    ns.set("job", 42u32).unwrap();
    assert_eq!(ns.get::<String>("name").unwrap(), "Bob");
    assert_eq!(ns.get::<u32>("job").unwrap(), 42);
    assert_eq!(ns.names().unwrap(), vec!["job".to_owned(), "name".to_owned()]);
    assert!(ns.remove("job").unwrap());
    assert!(!ns.remove("job").unwrap());
    match ns.get::<u32>("job") {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("a missing name gave {other:?}"),
    }
    assert_eq!(ns.try_get::<u32>("job").unwrap(), None);
    assert!(matches!(ns.get::<u32>("name"), Err(Error::Codec(_))), "a value of another type");
}

#[multiproc::remote]
fn add_many(d: DictProxy<String, i64>, n: u32) {
    for _ in 0..n {
        d.add(&"hits".to_owned(), 1).unwrap();
        d.update(&"doubled".to_owned(), |v| Some(v.unwrap_or(0) + 2)).unwrap();
    }
}

// MGR-20: Python's `d[k] += 1` from 4 processes loses most increments;
// `add` and `update` lose none.
#[test]
fn atomic_updates_from_four_processes_lose_nothing() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let children: Vec<_> = (0..4).map(|_| multiproc::spawn(add_many, (d.clone(), 300)).unwrap()).collect();
    for child in children {
        join(child).unwrap();
    }
    assert_eq!(d.get(&"hits".to_owned()).unwrap(), Some(1200));
    assert_eq!(d.get(&"doubled".to_owned()).unwrap(), Some(2400));
    let small = manager.dict::<u8, u8>().unwrap();
    small.insert(1, 250).unwrap();
    assert!(matches!(small.add(&1, 10), Err(Error::Io(_))), "overflow is an error");
    assert_eq!(small.get(&1).unwrap(), Some(250), "and changes nothing");
}

#[multiproc::remote]
fn touch_nested(outer: ListProxy<DictProxy<String, i32>>) {
    outer.get(0).unwrap().insert("from the child".into(), 7).unwrap();
}

#[multiproc::remote]
fn put_through_stored(l: ListProxy<Queue<u32>>) {
    l.get(0).unwrap().put(123).unwrap();
}

// MGR-01, MGR-04, MGR-06: a proxy inside a managed list stays live, and a
// queue stored in one works from a child.
#[test]
fn proxies_and_handles_inside_managed_objects_stay_live() {
    let manager = Manager::start().unwrap();
    let inner = manager.dict::<String, i32>().unwrap();
    let outer = manager.list::<DictProxy<String, i32>>().unwrap();
    outer.push(inner.clone()).unwrap();
    inner.insert("from the parent".into(), 1).unwrap();
    assert_eq!(outer.get(0).unwrap().get(&"from the parent".into()).unwrap(), Some(1));
    join(multiproc::spawn(touch_nested, (outer.clone(),)).unwrap()).unwrap();
    assert_eq!(inner.get(&"from the child".into()).unwrap(), Some(7));
    outer.clear().unwrap();
    assert_eq!(inner.len().unwrap(), 2, "clearing the list leaves the dict");

    let queues = manager.list::<Queue<u32>>().unwrap();
    let q = Queue::new().unwrap();
    queues.push(q.clone()).unwrap();
    join(multiproc::spawn(put_through_stored, (queues.clone(),)).unwrap()).unwrap();
    assert_eq!(q.get_timeout(LIMIT).unwrap(), 123);
}

// MGR-21: a killed manager makes every call `Error::Closed`, at once.
#[test]
fn a_killed_manager_closes_every_proxy_promptly() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let l = manager.list::<u32>().unwrap();
    d.insert(1, 1).unwrap();
    let pid = manager.pid().unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(common::gone_within(pid, LIMIT));
    let t0 = Instant::now();
    assert!(matches!(d.get(&1), Err(Error::Closed)));
    assert!(matches!(d.insert(2, 2), Err(Error::Closed)));
    assert!(matches!(l.len(), Err(Error::Closed)));
    assert!(matches!(manager.dict::<u8, u8>(), Err(Error::Closed)));
    assert!(t0.elapsed() < Duration::from_secs(1), "took {:?}", t0.elapsed());
    assert!(matches!(manager.shutdown(), Err(Error::ProcessDied { exitcode: -9, .. })));
}

#[multiproc::remote]
fn wait_in_a_call(d: DictProxy<u32, u32>) -> String {
    // Calls until the manager dies under it.
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if let Err(e) = d.insert(1, 1) {
            return format!("{e:?}");
        }
    }
    "the manager never went".to_owned()
}

// A child calling in a loop when the manager is killed gets `Closed`.
#[test]
fn a_child_calling_when_the_manager_dies_gets_closed() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let child = multiproc::spawn(wait_in_a_call, (d.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill(Pid::from_raw(manager.pid().unwrap() as i32), Signal::SIGKILL).unwrap();
    assert_eq!(join(child).unwrap(), "Closed");
}

// MGR-10: shutdown ends the server with code 0, and proxies are closed.
#[test]
fn shutdown_ends_the_server_cleanly() {
    let manager = Manager::start().unwrap();
    let l = manager.list_from([1u8, 2]).unwrap();
    let pid = manager.pid().unwrap();
    let t0 = Instant::now();
    manager.shutdown().unwrap();
    assert!(t0.elapsed() < multiproc::SHUTDOWN_TIMEOUT, "the server did not exit on its own");
    assert!(common::is_gone(pid));
    assert_eq!(manager.pid(), None);
    manager.shutdown().unwrap();
    assert!(matches!(l.len(), Err(Error::Closed)));

    let dropped = Manager::start().unwrap();
    let pid = dropped.pid().unwrap();
    drop(dropped);
    assert!(common::gone_within(pid, LIMIT), "dropping the manager leaves its server");
}

// A wrong key is `Error::Auth`, and the server sees nothing of it.
#[test]
fn a_wrong_key_is_refused() {
    let manager = Manager::builder().authkey(b"right key".to_vec()).start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    assert!(matches!(Manager::connect(manager.address().clone(), b"wrong key"), Err(Error::Auth(_))));
    let other = Manager::connect(manager.address().clone(), b"right key").unwrap();
    assert_eq!(other.pid(), None);
    let mine = other.dict::<u8, u8>().unwrap();
    mine.insert(1, 1).unwrap();
    drop(other);
    d.insert(1, 2).unwrap();
    assert_eq!(mine.get(&1).unwrap(), Some(1), "dropping a connected manager leaves the server");
}

// Garbage from an authenticated client is answered with an error, and the
// server goes on serving everyone.
#[test]
fn garbage_on_the_socket_does_not_stop_the_server() {
    let manager = Manager::builder().authkey(b"key".to_vec()).start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    let raw = Client::connect::<()>(manager.address().clone(), Some(b"key")).unwrap();
    raw.send_bytes(&[0xff; 37]).unwrap();
    assert!(raw.poll(LIMIT).unwrap(), "no answer to garbage");
    assert!(!raw.recv_bytes().unwrap().is_empty());
    raw.send_bytes(&[]).unwrap();
    assert!(raw.poll(LIMIT).unwrap());
    d.insert(3, 4).unwrap();
    assert_eq!(d.get(&3).unwrap(), Some(4));
    assert!(manager.pid().is_some_and(|pid| !common::is_gone(pid)));
}

#[multiproc::remote]
fn use_by_address(address: multiproc::connection::Address, key: Vec<u8>, l: ListProxy<String>) -> usize {
    let manager = Manager::connect(address, &key).unwrap();
    let mine = manager.list_from(["made in the child".to_owned()]).unwrap();
    l.push(mine.get(0).unwrap()).unwrap();
    l.len().unwrap()
}

// A manager on TCP, reached by address and key.
#[test]
fn a_manager_on_tcp() {
    let manager =
        Manager::builder().address("127.0.0.1:0").unwrap().authkey(b"tcp key".to_vec()).start().unwrap();
    assert!(matches!(manager.address(), multiproc::connection::Address::Tcp(_)));
    let l = manager.list::<String>().unwrap();
    let n = join(
        multiproc::spawn(use_by_address, (manager.address().clone(), b"tcp key".to_vec(), l.clone()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(l.to_vec().unwrap(), vec!["made in the child".to_owned()]);
    // Handles are fds: TCP cannot carry them.
    let queues = manager.list::<Queue<u8>>().unwrap();
    assert!(matches!(queues.push(Queue::new().unwrap()), Err(Error::Codec(_))));
    // A busy address is the caller's error.
    let taken = manager.address().clone();
    match Manager::builder().address(taken).unwrap().start() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}"),
        other => panic!("a busy address gave {other:?}"),
    }
}

#[multiproc::remote]
fn check_bounded(q: QueueProxy<u32>) -> (usize, bool, u32, u32, bool) {
    let (len, full) = (q.len().unwrap(), q.is_full().unwrap());
    let (a, b) = (q.get().unwrap(), q.get().unwrap());
    (len, full, a, b, q.is_empty().unwrap())
}

// MGR-15: a bounded manager queue seen from a child, and timeouts that
// are the client's Empty and Full.
#[test]
fn a_bounded_queue_proxy_in_a_child() {
    let manager = Manager::start().unwrap();
    let q = manager.bounded_queue::<u32>(2).unwrap();
    q.put(5).unwrap();
    q.put(6).unwrap();
    let t0 = Instant::now();
    assert!(matches!(q.put_timeout(7, Duration::from_millis(100)), Err(Error::Full)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(matches!(q.try_put(7), Err(Error::Full)));
    assert_eq!(join(multiproc::spawn(check_bounded, (q.clone(),)).unwrap()).unwrap(), (2, true, 5, 6, true));
    assert!(q.is_empty().unwrap());
    assert!(!q.is_full().unwrap());
    let t0 = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(100)), Err(Error::Empty)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(matches!(q.try_get(), Err(Error::Empty)));
    assert!(matches!(manager.bounded_queue::<u32>(0), Err(Error::Io(_))));
}

#[multiproc::remote]
fn work_and_mark_done(q: JoinableQueueProxy<u32>, done: ListProxy<u32>) {
    while let Ok(n) = q.get_timeout(Duration::from_millis(300)) {
        done.push(n * 10).unwrap();
        q.task_done().unwrap();
    }
}

// MGR-15, QUEUE-07, QUEUE-08 through a manager: join waits for every
// task_done, and one too many is an error.
#[test]
fn a_joinable_queue_proxy_joins_after_every_task() {
    let manager = Manager::start().unwrap();
    let q = manager.joinable_queue::<u32>().unwrap();
    let done = manager.list::<u32>().unwrap();
    for n in 0..20 {
        q.put(n).unwrap();
    }
    assert!(!q.join_timeout(Duration::from_millis(50)).unwrap(), "nothing is done yet");
    let workers: Vec<_> =
        (0..3).map(|_| multiproc::spawn(work_and_mark_done, (q.clone(), done.clone())).unwrap()).collect();
    q.join().unwrap();
    let mut got = done.to_vec().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..20).map(|n| n * 10).collect::<Vec<_>>());
    for w in workers {
        join(w).unwrap();
    }
    assert!(matches!(q.task_done(), Err(Error::Io(_))), "task_done once too often");
}

#[multiproc::remote]
fn get_one_proxy(q: QueueProxy<u32>) -> u32 {
    q.get().unwrap()
}

// A consumer killed while it waits in `get` takes nothing with it: the
// item put after its death goes to the next consumer.
#[test]
fn a_consumer_killed_in_a_proxy_get_loses_nothing() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let mut victim = multiproc::spawn(get_one_proxy, (q.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    victim.kill().unwrap();
    assert!(join(victim).is_err());
    q.put(42).unwrap();
    assert_eq!(join(multiproc::spawn(get_one_proxy, (q.clone(),)).unwrap()).unwrap(), 42);
    assert!(q.is_empty().unwrap());
}

/// Runs this binary again as another program doing `what` (see `helper`).
fn another_program(what: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MANAGER_HELPER", what)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The first line the other program said (`@@...`), read within LIMIT.
fn first_said(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(said) = line.strip_prefix("@@") {
                let _ = tx.send(said.to_owned());
            }
        }
    });
    rx.recv_timeout(LIMIT).expect("the other program said nothing")
}

/// Waits for `child` (bounded) and checks that it succeeded.
fn finish(mut child: std::process::Child) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the other program failed: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the other program did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const REMOTE_KEY: &[u8] = b"a key both programs know";

/// The other program. `serve` starts a manager on TCP with
/// [`REMOTE_KEY`], publishes a queue as `jobs`, says its address and
/// waits for its stdin to close; `feed:<address>` connects knowing only
/// the address and key, and puts 0..100 into `jobs`.
#[test]
#[ignore = "runs only as the other program of these tests"]
fn helper() {
    let Ok(what) = std::env::var("MANAGER_HELPER") else { return };
    if what == "serve" {
        let manager = Manager::builder().address("127.0.0.1:0").unwrap().authkey(REMOTE_KEY).start().unwrap();
        let jobs = manager.queue::<u32>().unwrap();
        manager.publish("jobs", &jobs).unwrap();
        println!("\n@@{}", manager.address());
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        manager.shutdown().unwrap();
    } else if let Some(address) = what.strip_prefix("feed:") {
        let manager = Manager::connect(address, REMOTE_KEY).unwrap();
        let jobs: QueueProxy<u32> = manager.lookup("jobs").unwrap();
        for i in 0..100 {
            jobs.put(i).unwrap();
        }
        println!("\n@@fed");
    } else {
        panic!("unknown helper task {what}");
    }
}

// A remote manager: one program serves a queue on TCP, another that knows
// only the address and key feeds it, and this one, related to neither
// server nor feeder, drains it.
#[test]
fn unrelated_programs_share_a_published_queue_over_tcp() {
    let mut server = another_program("serve");
    let address = first_said(&mut server);
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let mut feeder = another_program(&format!("feed:{address}"));
    assert_eq!(first_said(&mut feeder), "fed");
    finish(feeder);

    let manager = Manager::connect(address.as_str(), REMOTE_KEY).unwrap();
    let jobs: QueueProxy<u32> = manager.lookup("jobs").unwrap();
    let got: Vec<u32> = (0..100).map(|_| jobs.get_timeout(LIMIT).unwrap()).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    match manager.lookup::<QueueProxy<u32>>("nothing") {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("a missing name gave {other:?}"),
    }
    assert_eq!(
        io_kind(manager.lookup::<DictProxy<u8, u8>>("jobs")),
        std::io::ErrorKind::InvalidInput,
        "the wrong kind"
    );
    assert!(matches!(Manager::connect(address.as_str(), b"not the key"), Err(Error::Auth(_))));

    drop(server.stdin.take());
    finish(server);
    assert!(matches!(jobs.len(), Err(Error::Closed)), "the server is gone");
}

#[multiproc::remote]
fn take_proxy_from_queue(q: Queue<DictProxy<String, u32>>) {
    let d = q.get_timeout(LIMIT).unwrap();
    d.insert("through a queue".into(), 1).unwrap();
}

// A proxy is a value: it goes through a queue and stays live.
#[test]
fn a_proxy_goes_through_a_queue() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    let q = Queue::new().unwrap();
    q.put(d.clone()).unwrap();
    join(multiproc::spawn(take_proxy_from_queue, (q.clone(),)).unwrap()).unwrap();
    assert_eq!(d.get(&"through a queue".into()).unwrap(), Some(1));
}

// MGR-12: a manager can be started again on the address of one just shut
// down.
#[test]
fn a_manager_restarts_on_the_same_tcp_address() {
    let first = Manager::builder().address("127.0.0.1:0").unwrap().start().unwrap();
    let address = first.address().clone();
    let l = first.list_from([1u8]).unwrap();
    assert_eq!(l.len().unwrap(), 1, "a connection was made");
    first.shutdown().unwrap();
    let second = Manager::builder().address(address.clone()).unwrap().start().unwrap();
    assert_eq!(second.address(), &address);
    assert_eq!(second.list_from([1u8, 2]).unwrap().len().unwrap(), 2);
}

// A manager started again at the same address with the same key: the new
// proxies work at once (the idle connections to the old server are not a
// failure), and a proxy of the old server's object finds no object rather
// than another one.
#[test]
fn a_restarted_manager_is_not_mistaken_for_the_old_one() {
    let path = std::env::temp_dir().join(format!("multiproc-restart-{}", std::process::id()));
    for address in ["127.0.0.1:0".to_owned(), path.display().to_string()] {
        let key = b"the same key".to_vec();
        let first =
            Manager::builder().address(address.as_str()).unwrap().authkey(key.clone()).start().unwrap();
        let address = first.address().clone();
        let old = first.list_from([1u8]).unwrap();
        assert_eq!(old.len().unwrap(), 1);
        first.shutdown().unwrap();
        let second = Manager::builder().address(address.clone()).unwrap().authkey(key).start().unwrap();
        let new = second.list_from([1u8, 2]).unwrap();
        assert_eq!(new.len().unwrap(), 2, "{address}");
        assert!(matches!(old.len(), Err(Error::Io(_))), "{address}: the old object is not in the new server");
        assert_eq!(new.len().unwrap(), 2);
    }
    assert!(!path.exists(), "the socket file is left behind");
}

#[multiproc::remote]
fn note_pid(path: String) {
    std::fs::write(path, std::process::id().to_string()).unwrap();
}

#[multiproc::remote]
fn refuse_to_start() {
    panic!("no config found");
}

// MGR-14: the initializer runs once, in the server process; one that
// panics is start's `Error::Remote`.
#[test]
fn the_initializer_runs_once_in_the_server() {
    let path = std::env::temp_dir().join(format!("multiproc-mgr-init-{}", std::process::id()));
    let manager = Manager::builder().initializer(note_pid, (path.display().to_string(),)).start().unwrap();
    let written: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(Some(written), manager.pid());
    match Manager::builder().initializer(refuse_to_start, ()).start() {
        Err(Error::Remote(e)) => {
            assert_eq!(e.message(), "no config found");
            assert!(e.function().ends_with("refuse_to_start"), "{}", e.function());
        }
        other => panic!("a failing initializer gave {other:?}"),
    }
}

// A released object is gone for every proxy, published names included.
#[test]
fn a_released_object_is_gone_for_every_proxy() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    let kept = manager.dict::<u8, u8>().unwrap();
    manager.publish("d", &d).unwrap();
    let other = d.clone();
    assert!(manager.release(&d).unwrap());
    assert!(!manager.release(&d).unwrap(), "released twice");
    assert_eq!(io_kind(other.insert(1, 1)), std::io::ErrorKind::NotFound);
    assert_eq!(io_kind(manager.lookup::<DictProxy<u8, u8>>("d")), std::io::ErrorKind::NotFound);
    kept.insert(1, 1).unwrap();
    let elsewhere = Manager::start().unwrap();
    assert_eq!(
        io_kind(elsewhere.release(&kept)),
        std::io::ErrorKind::InvalidInput,
        "not that manager's object"
    );
}

#[multiproc::remote]
fn wait_for_an_item(q: QueueProxy<u32>) -> String {
    match q.get() {
        Ok(item) => format!("got {item}"),
        Err(e) => format!("{e:?}"),
    }
}

// A call waiting in the server when the manager is killed ends at once
// with `Closed`, never hangs.
#[test]
fn a_waiting_call_ends_when_the_manager_is_killed() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let waiter = multiproc::spawn(wait_for_an_item, (q.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    kill(Pid::from_raw(manager.pid().unwrap() as i32), Signal::SIGKILL).unwrap();
    assert_eq!(join(waiter).unwrap(), "Closed");
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
}

#[multiproc::remote]
fn start_a_manager(report: multiproc::Connection<u32>) {
    let manager = Manager::start().unwrap();
    report.send(manager.pid().unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

// No orphans: the server of a manager whose owner is SIGKILLed ends too.
#[test]
fn a_managers_server_dies_with_its_owner() {
    let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
    let mut owner = multiproc::spawn(start_a_manager, (theirs,)).unwrap();
    assert!(mine.poll(LIMIT).unwrap());
    let server = mine.recv().unwrap();
    assert!(!common::is_gone(server));
    owner.kill().unwrap();
    assert!(common::gone_within(server, Duration::from_secs(2)), "the manager outlived its owner");
    assert!(join(owner).is_err());
}

/// The kind of the `Error::Io` that `result` must be.
fn io_kind<T: std::fmt::Debug>(result: multiproc::Result<T>) -> std::io::ErrorKind {
    match result {
        Err(Error::Io(e)) => e.kind(),
        other => panic!("expected an i/o error, got {other:?}"),
    }
}

// The errors the dict and the manager promise for what cannot be done.
#[test]
fn what_cannot_be_done_is_the_callers_error() {
    let manager = Manager::builder().authkey(b"do not print me".to_vec()).start().unwrap();
    assert!(!format!("{manager:?}").contains("do not print me"));
    let builder = Manager::builder().authkey(b"do not print me".to_vec());
    assert!(!format!("{builder:?}").contains("do not print me"), "{builder:?}");

    // Keys with handles; values of another type; compare-and-swap on a
    // value holding handles.
    let queues = manager.dict::<Queue<u8>, u8>().unwrap();
    assert_eq!(io_kind(queues.insert(Queue::new().unwrap(), 1)), std::io::ErrorKind::InvalidInput);
    let d = manager.dict::<String, String>().unwrap();
    d.insert("a".into(), "text".into()).unwrap();
    // The same object, seen with other types (as another program might).
    manager.publish("d", &d).unwrap();
    let same: DictProxy<String, u64> = manager.lookup("d").unwrap();
    assert!(matches!(same.get(&"a".into()), Err(Error::Codec(_))), "a value of another type");
    assert_eq!(io_kind(same.add(&"a".into(), 1)), std::io::ErrorKind::InvalidInput, "adding to text");
    assert_eq!(d.update(&"a".into(), |_| None).unwrap(), None);
    assert!(!d.contains_key(&"a".into()).unwrap(), "update to None removes");
    let handles = manager.dict::<u8, Queue<u8>>().unwrap();
    handles.insert(1, Queue::new().unwrap()).unwrap();
    assert_eq!(io_kind(handles.update(&1, |q| q)), std::io::ErrorKind::InvalidInput);
    let q = Queue::new().unwrap();
    assert_eq!(io_kind(handles.compare_and_swap(&1, Some(&q), None)), std::io::ErrorKind::InvalidInput);

    // Publishing: another manager's object; a name published again.
    let other = Manager::start().unwrap();
    let foreign = other.list::<u8>().unwrap();
    assert_eq!(io_kind(manager.publish("x", &foreign)), std::io::ErrorKind::InvalidInput);
    let (first, second) = (manager.list_from([1u8]).unwrap(), manager.list_from([2u8]).unwrap());
    manager.publish("x", &first).unwrap();
    manager.publish("x", &second).unwrap();
    assert_eq!(manager.lookup::<ListProxy<u8>>("x").unwrap().to_vec().unwrap(), vec![2]);

    // Nothing listens there.
    let address = other.address().clone();
    other.shutdown().unwrap();
    assert!(matches!(Manager::connect(address, b"any"), Err(Error::Closed)));
    assert!(matches!(foreign.len(), Err(Error::Closed)));
}
