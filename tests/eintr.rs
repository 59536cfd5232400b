//! Signal handlers that run while a connection or a listener waits do not
//! break the wait (CONN-17, LIST-09): interrupted system calls are resumed,
//! and a wait with a deadline waits for the time that is left.
//!
//! A test binary of its own, as it installs a process-wide handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multiproc::connection::{Client, Listener};
use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::Signal;

/// Sends SIGUSR1 to `target` every millisecond until `stop`, and counts.
fn pester(target: Pthread, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            if pthread_kill(target, Signal::SIGUSR1).is_ok() {
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    })
}

#[test]
fn waits_and_reads_go_on_through_signal_handlers() {
    let handled = Arc::new(AtomicUsize::new(0));
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone()).unwrap();
    let counter = handled.clone();
    // Count handler runs through the flag the handler sets.
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = watch_stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if flag.swap(false, Ordering::Relaxed) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let pest = pester(pthread_self(), stop.clone());

    // poll with a timeout: waits its whole time despite the interruptions.
    let (a, b) = multiproc::pipe::<Vec<u8>>().unwrap();
    let t0 = Instant::now();
    assert!(!b.poll(Duration::from_millis(300)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(290), "{:?}", t0.elapsed());

    // A 16 MiB message: the reader waits for the writer many times.
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let expected = big.clone();
    let sender = std::thread::spawn(move || a.send(big));
    assert_eq!(b.recv().unwrap(), expected);
    sender.join().unwrap().unwrap();

    // accept waits through the signals for a client that comes late.
    let listener = Listener::bind("127.0.0.1:0", Some(b"key")).unwrap();
    let address = listener.address();
    let client = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        Client::connect::<u8>(&address, Some(b"key")).and_then(|c| c.recv())
    });
    listener.accept::<u8>().unwrap().send(9).unwrap();
    assert_eq!(client.join().unwrap().unwrap(), 9);

    stop.store(true, Ordering::Relaxed);
    let sent = pest.join().unwrap();
    watch_stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(sent > 100, "only {sent} signals were sent");
    assert!(handled.load(Ordering::Relaxed) > 0, "the handler never ran");
}
