//! Starting and joining processes leaks no fd in the parent, whatever the
//! way the children end. A file of its own: fd counts are per process, and
//! tests running beside it would disturb them.

mod common;

use multiproc::{Context, StartMethod};

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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn start_and_join_leak_no_fds() {
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
