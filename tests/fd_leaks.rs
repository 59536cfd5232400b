//! Starting and joining processes, and using queues with them, leaks no fd
//! in the parent, whatever the way the children end. A file of its own: fd
//! counts are per process, and tests running beside it would disturb them;
//! its tests run one at a time.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use multiproc::{Context, JoinableQueue, Queue, SimpleQueue, StartMethod};

use common::join;

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn boom() {
    panic!("boom")
}

#[multiproc::remote]
fn nap() {
    std::thread::sleep(std::time::Duration::from_secs(3600));
}

#[multiproc::remote]
fn echo_through(requests: Queue<Queue<u64>>, done: JoinableQueue<u64>, simple: SimpleQueue<u64>) {
    // A queue that came through a queue, answered on.
    let replies = requests.get().unwrap();
    replies.put(done.get().unwrap() + 1).unwrap();
    done.task_done().unwrap();
    simple.put(7).unwrap();
}

#[multiproc::remote]
fn stream_big(q: Queue<Vec<u8>>) {
    q.put(vec![1u8; 3 << 20]).unwrap();
}

#[multiproc::remote]
fn wait_forever(q: Queue<u64>) -> u64 {
    q.get().unwrap()
}

/// Takes an item larger than the ring from a child, streamed while this
/// process reads it.
fn streamed_item(ctx: &Context) {
    let big = Queue::<Vec<u8>>::builder().ring_bytes(1 << 20).build().unwrap();
    let child = ctx.spawn(stream_big, (big.clone(),)).unwrap();
    assert_eq!(big.get_timeout(common::LIMIT).unwrap().len(), 3 << 20);
    join(child).unwrap();
}

/// One test at a time: each counts the process's fds.
static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn start_and_join_leak_no_fds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for method in StartMethod::ALL {
        let ctx = Context::new(method);
        // The first start may open what lives as long as the process: the
        // fork server's control socket.
        join(ctx.spawn(square, (1,)).unwrap()).unwrap();
        let before = open_fds();
        for i in 0..20 {
            assert_eq!(join(ctx.spawn(square, (i,)).unwrap()).unwrap(), i * i);
            assert!(join(ctx.spawn(boom, ()).unwrap()).is_err());
            let mut p = ctx.spawn(nap, ()).unwrap();
            p.kill().unwrap();
            assert!(join(p).is_err());
            drop(ctx.spawn(square, (i,)).unwrap());
        }
        while !multiproc::active_children().is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(open_fds(), before, "{method}: fds leaked");
    }
}

fn wait_for_children() {
    let deadline = std::time::Instant::now() + common::LIMIT;
    while !multiproc::active_children().is_empty() {
        assert!(std::time::Instant::now() < deadline, "children still running");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// Every handle of a queue, in this process and in children under every
// start method, is closed when the last clone goes: the queues' segments,
// their fd-message sockets, the fds items carried, and the pidfds a
// consumer of a streamed item watches.
#[test]
fn queues_leak_no_fds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for method in StartMethod::ALL {
        let ctx = Context::new(method);
        // What lives as long as the process: the fork server's socket, and
        // the thread that watches the producer of a streamed item.
        streamed_item(&ctx);
        let before = open_fds();
        for i in 0..5 {
            let requests = Queue::<Queue<u64>>::new().unwrap();
            let done = JoinableQueue::<u64>::new().unwrap();
            let simple = SimpleQueue::<u64>::new().unwrap();
            let replies = Queue::<u64>::new().unwrap();
            let child = ctx.spawn(echo_through, (requests.clone(), done.clone(), simple.clone())).unwrap();
            requests.put(replies.clone()).unwrap();
            done.put(i).unwrap();
            assert_eq!(replies.get_timeout(common::LIMIT).unwrap(), i + 1);
            assert!(done.join_timeout(common::LIMIT).unwrap());
            assert_eq!(simple.get().unwrap(), 7);
            join(child).unwrap();

            streamed_item(&ctx);

            // A consumer killed while it waits.
            let idle = Queue::<u64>::new().unwrap();
            let mut child = ctx.spawn(wait_forever, (idle.clone(),)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            child.kill().unwrap();
            assert!(join(child).is_err());
        }
        wait_for_children();
        assert_eq!(open_fds(), before, "{method}: fds leaked");
    }
}

/// Starts a manager, calls it (a dict, and a lock, which opens this
/// process's session with it), and shuts it down.
fn manager_cycle() {
    let manager = multiproc::Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    d.insert(1, 1).unwrap();
    let lock = manager.lock().unwrap();
    lock.acquire().unwrap().release().unwrap();
    manager.shutdown().unwrap();
}

// A manager that is shut down leaves no connection to it open here: not
// the idle ones its proxies used, nor this process's session.
#[test]
fn managers_leak_no_fds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    manager_cycle();
    let before = open_fds();
    for _ in 0..10 {
        manager_cycle();
    }
    wait_for_children();
    assert_eq!(open_fds(), before, "fds leaked");
}
