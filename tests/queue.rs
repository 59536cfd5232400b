//! Queues across processes: Queue, SimpleQueue, JoinableQueue (QUEUE-* of
//! ../shared/spec/cpython-conformance.md), with the faults CPython loses
//! data or hangs on.

mod common;

use std::time::{Duration, Instant};

use multiproc::{Context, Error, JoinableQueue, Queue, SimpleQueue, StartMethod};

use common::{LIMIT, join};

// QUEUE-01, QUEUE-06: sizes are exact at once, in order.
#[test]
fn put_and_get_in_one_process() {
    let q = Queue::<u64>::new().unwrap();
    assert!(q.is_empty());
    assert!(!q.is_full());
    assert_eq!(q.capacity(), None);
    q.put(1).unwrap();
    assert_eq!(q.len(), 1);
    q.put(2).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.len(), 0);
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

// QUEUE-02, QUEUE-04: a full bounded queue and an empty one, at once and
// after a timeout.
#[test]
fn full_and_empty_are_errors_after_their_time() {
    let q = Queue::<u32>::bounded(2).unwrap();
    assert_eq!(q.capacity(), Some(2));
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    assert!(q.is_full());
    let t0 = Instant::now();
    assert!(matches!(q.try_put(3), Err(Error::Full)));
    assert!(t0.elapsed() < Duration::from_millis(50));
    let t0 = Instant::now();
    assert!(matches!(q.put_timeout(3, Duration::from_millis(100)), Err(Error::Full)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert_eq!(q.len(), 2, "a put that failed leaves nothing");
    assert_eq!((q.get().unwrap(), q.get().unwrap()), (1, 2));
    let t0 = Instant::now();
    assert!(matches!(q.try_get(), Err(Error::Empty)));
    assert!(t0.elapsed() < Duration::from_millis(50));
    let t0 = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(200)), Err(Error::Empty)));
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(matches!(Queue::<u32>::bounded(0), Err(Error::Io(_))));
}

#[multiproc::remote]
fn put_range(q: Queue<u32>, from: u32, to: u32) {
    for i in from..to {
        q.put(i).unwrap();
    }
}

// QUEUE-03, QUEUE-05: what the parent put before the child started and
// what the child puts come out in order, under every start method.
#[test]
fn items_from_parent_and_child_keep_their_order() {
    for method in StartMethod::ALL {
        let q = Queue::<u32>::new().unwrap();
        for i in 0..10 {
            q.put(i).unwrap();
        }
        join(Context::new(method).spawn(put_range, (q.clone(), 10, 20)).unwrap()).unwrap();
        assert_eq!(q.len(), 20, "method {method}");
        let got: Vec<u32> = q.try_iter().collect();
        assert_eq!(got, (0..20).collect::<Vec<_>>(), "method {method}");
        assert!(matches!(q.try_get(), Err(Error::Empty)));
    }
}

#[multiproc::remote]
fn tagged_producer(q: Queue<(u32, u32)>, tag: u32, n: u32) {
    for i in 0..n {
        q.put((tag, i)).unwrap();
    }
}

#[multiproc::remote]
fn drain_until_stop(q: Queue<(u32, u32)>, out: Queue<Vec<(u32, u32)>>) {
    let mut got = Vec::new();
    loop {
        let item = q.get().unwrap();
        if item.0 == u32::MAX {
            break;
        }
        got.push(item);
    }
    out.put(got).unwrap();
}

/// Four producers and three consumers at once: every item arrives exactly
/// once, and each producer's items in its order.
#[test]
fn many_producers_and_consumers_lose_nothing() {
    const N: u32 = 2000;
    let q = Queue::<(u32, u32)>::builder().ring_bytes(4096).build().unwrap();
    let out = Queue::<Vec<(u32, u32)>>::new().unwrap();
    let consumers: Vec<_> =
        (0..3).map(|_| multiproc::spawn(drain_until_stop, (q.clone(), out.clone())).unwrap()).collect();
    let producers: Vec<_> =
        (0..4).map(|tag| multiproc::spawn(tagged_producer, (q.clone(), tag, N)).unwrap()).collect();
    for p in producers {
        join(p).unwrap();
    }
    for _ in 0..3 {
        q.put((u32::MAX, 0)).unwrap();
    }
    for c in consumers {
        join(c).unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..3 {
        let got = out.get_timeout(LIMIT).unwrap();
        for tag in 0..4 {
            let mine: Vec<u32> = got.iter().filter(|(t, _)| *t == tag).map(|(_, i)| *i).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {tag}'s items out of order");
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<(u32, u32)> = (0..4).flat_map(|t| (0..N).map(move |i| (t, i))).collect();
    assert_eq!(all.len(), expected.len());
    assert_eq!(all, expected);
}

/// Threads of one process and a child process, producing and consuming on
/// the same queue at once (clones of one handle in the threads): nothing
/// lost, nothing twice, each producer's items in its order.
#[test]
fn threads_and_processes_share_one_queue() {
    const N: u32 = 3000;
    let q = Queue::<(u32, u32)>::builder().ring_bytes(1024).build().unwrap();
    let child = multiproc::spawn(tagged_producer, (q.clone(), 0, N)).unwrap();
    let producers: Vec<_> = (1..3)
        .map(|tag| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    q.put((tag, i)).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(item) = q.get_timeout(LIMIT) {
                    if item.0 == u32::MAX {
                        break;
                    }
                    got.push(item);
                }
                got
            })
        })
        .collect();
    join(child).unwrap();
    for p in producers {
        p.join().unwrap();
    }
    for _ in 0..2 {
        q.put((u32::MAX, 0)).unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let got = c.join().unwrap();
        for tag in 0..3 {
            let mine: Vec<u32> = got.iter().filter(|(t, _)| *t == tag).map(|(_, i)| *i).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {tag}'s items out of order");
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<(u32, u32)> = (0..3).flat_map(|t| (0..N).map(move |i| (t, i))).collect();
    assert_eq!(all, expected);
    assert!(q.is_empty());
}

#[multiproc::remote]
fn put_one_and_exit(q: Queue<u32>, i: u32) {
    q.put(i).unwrap();
}

/// QUEUE-18, QUEUE-19: a producer that exits right after `put` loses
/// nothing, with no feeder thread to flush; a thousand times over.
#[test]
fn a_producer_that_exits_right_after_put_loses_nothing() {
    const N: u32 = 1000;
    let q = Queue::<u32>::new().unwrap();
    let mut running = Vec::new();
    for i in 0..N {
        running.push(multiproc::spawn(put_one_and_exit, (q.clone(), i)).unwrap());
        if running.len() == 16 {
            for p in running.drain(..) {
                join(p).unwrap();
            }
        }
    }
    for p in running {
        join(p).unwrap();
    }
    assert_eq!(q.len(), N as usize);
    let mut got: Vec<u32> = q.try_iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

#[multiproc::remote]
fn put_big(q: Queue<Vec<u8>>, len: usize) {
    q.put((0..len).map(|i| (i % 251) as u8).collect()).unwrap();
    q.put(b"after".to_vec()).unwrap();
}

/// An item far larger than the ring goes through it piece by piece.
#[test]
fn a_64_mib_item_goes_through_a_1_mib_ring() {
    let q = Queue::<Vec<u8>>::new().unwrap();
    let len = 64 << 20;
    let producer = multiproc::spawn(put_big, (q.clone(), len)).unwrap();
    let big = q.get_timeout(LIMIT).unwrap();
    assert_eq!(big.len(), len);
    assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "the item came torn");
    assert_eq!(q.get_timeout(LIMIT).unwrap(), b"after");
    join(producer).unwrap();
}

/// A value whose serialization fails.
#[derive(Debug, serde::Deserialize)]
enum Item {
    Fine(u32),
    Refused,
}

impl serde::Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Fine(n) => s.serialize_newtype_variant("Item", 0, "Fine", n),
            Item::Refused => Err(serde::ser::Error::custom("this item refuses to be encoded")),
        }
    }
}

/// QUEUE-10: an item that cannot be encoded is `put`'s error, at once, and
/// the queue and its count stay right.
#[test]
fn an_item_that_cannot_be_encoded_is_puts_error() {
    let q = Queue::<Item>::bounded(2).unwrap();
    q.put(Item::Fine(1)).unwrap();
    assert!(matches!(q.put(Item::Refused), Err(Error::Codec(_))));
    assert_eq!(q.len(), 1);
    q.put(Item::Fine(2)).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.get().unwrap(), Item::Fine(1)));
    assert!(matches!(q.get().unwrap(), Item::Fine(2)));
}

#[multiproc::remote]
fn get_one(q: Queue<u32>) -> u32 {
    q.get().unwrap()
}

/// A consumer killed while it waits in `get` (holding the consumers' lock)
/// does not keep the others from the queue.
#[test]
fn a_consumer_killed_in_get_leaves_the_queue_usable() {
    let q = Queue::<u32>::new().unwrap();
    let mut consumer = multiproc::spawn(get_one, (q.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    consumer.kill().unwrap();
    assert!(join(consumer).is_err());
    q.put(7).unwrap();
    assert_eq!(q.get_timeout(LIMIT).unwrap(), 7);
    // And through another process too.
    let consumer = multiproc::spawn(get_one, (q.clone(),)).unwrap();
    q.put(8).unwrap();
    assert_eq!(join(consumer).unwrap(), 8);
}

/// A producer killed half-way through an item larger than the ring leaves
/// no part of it: the next item comes out whole, and a consumer waiting on
/// the half item is not left waiting forever.
#[test]
fn a_producer_killed_in_put_leaves_no_torn_item() {
    let q = Queue::<Vec<u8>>::builder().ring_bytes(1 << 16).build().unwrap();
    let mut producer = multiproc::spawn(put_big, (q.clone(), 1 << 20)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // It has filled the ring and waits for room, holding the producers'
    // lock; stopped, it will not go on when room is made.
    stop(&producer, nix::sys::signal::SIGSTOP);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = q.clone();
    std::thread::spawn(move || {
        // Takes the first pieces, then waits for the rest.
        tx.send(waiting.get_timeout(Duration::from_secs(2)).map(|v| v.len())).unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    producer.kill().unwrap();
    let t0 = Instant::now();
    let got = rx.recv_timeout(LIMIT).expect("the consumer of the half item never returned");
    assert!(matches!(got, Err(Error::Empty)), "the half item came out: {got:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    q.put(b"whole".to_vec()).unwrap();
    assert_eq!(q.get_timeout(LIMIT).unwrap(), b"whole");
    assert!(q.is_empty());
}

/// A producer killed half-way with nobody reading: the next producer
/// clears the half item.
#[test]
fn a_producer_killed_with_no_consumer_leaves_no_torn_item() {
    let q = Queue::<Vec<u8>>::builder().ring_bytes(1 << 16).build().unwrap();
    let mut producer = multiproc::spawn(put_big, (q.clone(), 1 << 20)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    producer.kill().unwrap();
    let _ = join(producer);
    q.put(b"whole".to_vec()).unwrap();
    assert_eq!(q.get_timeout(LIMIT).unwrap(), b"whole");
}

fn stop<T>(p: &multiproc::Process<T>, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid() as i32), signal).unwrap();
}

#[multiproc::remote]
fn get_big(q: Queue<Vec<u8>>) -> usize {
    q.get().unwrap().len()
}

/// A consumer killed half-way through an item larger than the ring: the
/// next consumer skips the rest of it and gets the next item.
#[test]
fn a_consumer_killed_half_way_through_an_item_loses_only_that_item() {
    let q = Queue::<Vec<u8>>::builder().ring_bytes(1 << 16).build().unwrap();
    let producer = multiproc::spawn(put_big, (q.clone(), 1 << 20)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop(&producer, nix::sys::signal::SIGSTOP);
    let mut consumer = multiproc::spawn(get_big, (q.clone(),)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    consumer.kill().unwrap();
    assert!(join(consumer).is_err());
    stop(&producer, nix::sys::signal::SIGCONT);
    assert_eq!(q.get_timeout(LIMIT).unwrap(), b"after");
    join(producer).unwrap();
}

#[multiproc::remote]
fn get_all_until_closed(q: Queue<u32>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(v) => got.push(v),
            Err(Error::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

// QUEUE-13 (done our way): after close, put fails, get drains and then
// fails, and a consumer waiting in another process wakes up.
#[test]
fn close_stops_puts_and_ends_gets_after_the_rest() {
    let q = Queue::<u32>::new().unwrap();
    let waiting = multiproc::spawn(get_all_until_closed, (q.clone(),)).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    q.close();
    assert!(q.is_closed());
    assert!(matches!(q.put(3), Err(Error::Closed)));
    assert_eq!(join(waiting).unwrap(), vec![1, 2]);
    let q = Queue::<u32>::new().unwrap();
    q.put(5).unwrap();
    q.close();
    assert_eq!(q.iter().collect::<Vec<_>>(), vec![5]);
    assert!(matches!(q.get(), Err(Error::Closed)));
}

#[multiproc::remote]
fn work_and_mark_done(q: JoinableQueue<u32>, results: Queue<u32>) {
    loop {
        match q.get() {
            Ok(n) => {
                results.put(n * n).unwrap();
                q.task_done().unwrap();
            }
            Err(Error::Closed) => return,
            Err(e) => panic!("{e}"),
        }
    }
}

// QUEUE-07, QUEUE-08: join returns once every item is done, with four
// consumer processes; one task_done too many is an error.
#[test]
fn joinable_queue_join_waits_for_every_task_done() {
    let q = JoinableQueue::<u32>::new().unwrap();
    let results = Queue::<u32>::new().unwrap();
    let workers: Vec<_> =
        (0..4).map(|_| multiproc::spawn(work_and_mark_done, (q.clone(), results.clone())).unwrap()).collect();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    assert!(q.join_timeout(LIMIT).unwrap(), "join did not return");
    assert_eq!(q.unfinished(), 0);
    assert_eq!(results.len(), 100, "join returned before every item was done");
    let mut squares: Vec<u32> = results.try_iter().collect();
    squares.sort_unstable();
    assert_eq!(squares, (0..100).map(|i| i * i).collect::<Vec<_>>());
    q.close();
    for w in workers {
        join(w).unwrap();
    }
    assert!(matches!(q.task_done(), Err(Error::Io(e)) if e.to_string().contains("too many times")));
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(50)).unwrap());
}

#[multiproc::remote]
fn report_empty_twice(q: SimpleQueue<bool>) {
    q.put(q.is_empty()).unwrap();
    q.put(q.is_empty()).unwrap();
}

// QUEUE-16, QUEUE-17
#[test]
fn simple_queue_empty_and_close() {
    let q = SimpleQueue::<bool>::new().unwrap();
    assert!(q.is_empty());
    join(multiproc::spawn(report_empty_twice, (q.clone(),)).unwrap()).unwrap();
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.is_empty());
    q.close();
    q.close();
    assert!(matches!(q.put(true), Err(Error::Closed)));
}

#[multiproc::remote]
fn answer_through(inner: Queue<u32>, conn: multiproc::Connection<String>) {
    inner.put(42).unwrap();
    conn.send("hello through a queue".to_owned()).unwrap();
}

/// Handles travel inside items: a queue inside a queue, a connection
/// inside a queue, to a child.
#[test]
fn handles_go_through_a_queue() {
    let outer = Queue::<(Queue<u32>, multiproc::Connection<String>)>::new().unwrap();
    let inner = Queue::<u32>::new().unwrap();
    let (ours, theirs) = multiproc::pipe::<String>().unwrap();
    outer.put((inner.clone(), theirs)).unwrap();
    let (inner_copy, conn) = outer.get().unwrap();
    join(multiproc::spawn(answer_through, (inner_copy, conn)).unwrap()).unwrap();
    assert_eq!(inner.get_timeout(LIMIT).unwrap(), 42);
    assert!(ours.poll(LIMIT).unwrap());
    assert_eq!(ours.recv().unwrap(), "hello through a queue");
}

// A ring full by bytes (no maxsize): an item that fits the ring waits for
// room, and try_put / put_timeout give Full; what the ring holds stays.
#[test]
fn a_ring_full_of_bytes_is_full() {
    let q = Queue::<Vec<u8>>::builder().ring_bytes(256).build().unwrap();
    let mut put = 0;
    while q.try_put(vec![put as u8; 50]).is_ok() {
        put += 1;
        assert!(put < 10, "a 256-byte ring took {put} items of 60 bytes");
    }
    assert_eq!(put, 4, "four items of 8 + 52 bytes fit in 256");
    let t0 = Instant::now();
    assert!(matches!(q.put_timeout(vec![9; 50], Duration::from_millis(100)), Err(Error::Full)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let got: Vec<Vec<u8>> = q.try_iter().collect();
    assert_eq!(got, (0..4).map(|i| vec![i as u8; 50]).collect::<Vec<_>>());
}

// An item exactly as long as the ring goes in whole; one byte more is
// streamed, with a consumer reading it as it comes.
#[test]
fn items_at_the_ring_size_go_whole_or_streamed() {
    let q = Queue::<Vec<u8>>::builder().ring_bytes(256).build().unwrap();
    // 8 header bytes, 2 bytes of length, 246 of payload.
    q.try_put(vec![1; 246]).expect("an item the size of the ring fits an empty one");
    assert_eq!(q.get().unwrap(), vec![1; 246]);
    std::thread::scope(|s| {
        let reader = s.spawn(|| q.get_timeout(LIMIT).unwrap());
        q.put_timeout(vec![2; 247], LIMIT).unwrap();
        assert_eq!(reader.join().unwrap(), vec![2; 247]);
    });
    assert!(q.is_empty());
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Mixed {
    Plain(u32),
    Handle(multiproc::Connection<u32>),
}

// Items with handles (16-byte headers) and without (8-byte) mixed through
// a small ring, wrapping many times, come out in order, the handles live.
#[test]
fn items_with_and_without_handles_mix_across_the_wrap() {
    let q = Queue::<Mixed>::builder().ring_bytes(128).build().unwrap();
    let mut ours = Vec::new();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut got = Vec::new();
            for _ in 0..100 {
                got.push(q.get_timeout(LIMIT).unwrap());
            }
            got
        });
        for i in 0..100u32 {
            if i % 3 == 0 {
                let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
                ours.push(mine);
                q.put_timeout(Mixed::Handle(theirs), LIMIT).unwrap();
            } else {
                q.put_timeout(Mixed::Plain(i), LIMIT).unwrap();
            }
        }
        let got = reader.join().unwrap();
        let mut handles = ours.iter();
        for (i, item) in got.into_iter().enumerate() {
            match item {
                Mixed::Plain(n) => assert_eq!(n as usize, i),
                Mixed::Handle(conn) => {
                    assert_eq!(i % 3, 0, "item {i} out of place");
                    conn.send(i as u32).unwrap();
                    let mine = handles.next().unwrap();
                    assert!(mine.poll(LIMIT).unwrap());
                    assert_eq!(mine.recv().unwrap() as usize, i);
                }
            }
        }
    });
}

// A put of an item with handles that fails (the ring is full) leaves
// nothing of it behind: the handle is closed with the caller's copy, and
// many such failures do not clog later puts of handles.
#[test]
fn a_failed_put_of_a_handle_keeps_nothing() {
    let q = Queue::<Mixed>::builder().ring_bytes(64).build().unwrap();
    q.try_put(Mixed::Plain(1)).unwrap();
    while q.try_put(Mixed::Plain(2)).is_ok() {}
    for _ in 0..30 {
        let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
        assert!(matches!(q.try_put(Mixed::Handle(theirs)), Err(Error::Full)));
        assert!(mine.poll(LIMIT).unwrap());
        assert!(matches!(mine.recv(), Err(Error::Closed)), "the failed put kept the handle open");
    }
    while q.try_get().is_ok() {}
    let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
    q.put_timeout(Mixed::Handle(theirs), Duration::from_secs(5)).expect("a handle put after failed ones");
    let Ok(Mixed::Handle(conn)) = q.try_get() else { panic!("the handle did not come out") };
    conn.send(7).unwrap();
    assert!(mine.poll(LIMIT).unwrap());
    assert_eq!(mine.recv().unwrap(), 7);
}
