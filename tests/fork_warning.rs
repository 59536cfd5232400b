//! The fork start method warns, once, when the process has other threads
//! (CPython 3.12's DeprecationWarning, P4 of the conformance notes).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use multiproc::{Context, StartMethod};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[multiproc::remote]
fn one() -> u8 {
    1
}

#[test]
fn forking_a_threaded_process_warns_once() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let busy = std::thread::spawn(move || stopped.recv_timeout(Duration::from_secs(60)));
    let ctx = Context::new(StartMethod::Fork);
    for _ in 0..3 {
        assert_eq!(common::join(ctx.spawn(one, ()).unwrap()).unwrap(), 1);
    }
    stop.send(()).unwrap();
    busy.join().unwrap().unwrap();
    let warnings = CAPTURE.0.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("fork") && warnings[0].contains("threads"), "{}", warnings[0]);
}
