//! Every Pool snippet of the seed notes, in Rust: `map`, `imap_unordered`,
//! `apply_async` with `get(timeout=1)` (including the one that times out),
//! `imap` with `next(timeout=1)`, and `apply_async` with a callback that
//! collects results in the parent.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multiproc::{Error, Pool};

#[multiproc::remote]
fn f(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn getpid() -> u32 {
    std::process::id()
}

#[multiproc::remote]
fn sleep(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

#[multiproc::remote]
fn foo_pool(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    x * x
}

fn main() -> multiproc::Result<()> {
    let second = Duration::from_secs(1);
    let pool = Pool::builder().processes(4).build()?;

    let squares = pool.map(f, 0..10)?;
    println!("{squares:?}");
    assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);

    let mut unordered = Vec::new();
    for i in pool.imap_unordered(f, 0..10)? {
        let i = i?;
        println!("{i}");
        unordered.push(i);
    }
    assert_eq!(unordered.iter().collect::<BTreeSet<_>>(), squares.iter().collect::<BTreeSet<_>>());

    let res = pool.apply_async(f, (20,))?;
    let v = res.get_timeout(second)?;
    println!("{v}");
    assert_eq!(v, 400);

    let res = pool.apply_async(getpid, ())?;
    let pid = res.get_timeout(second)?;
    println!("{pid}");
    assert_ne!(pid, std::process::id(), "it ran in a worker");

    let multiple_results =
        (0..4).map(|_| pool.apply_async(getpid, ())).collect::<multiproc::Result<Vec<_>>>()?;
    let pids =
        multiple_results.iter().map(|r| r.get_timeout(second)).collect::<multiproc::Result<Vec<u32>>>()?;
    println!("{pids:?}");

    let mut it = pool.imap(f, 0..10)?;
    println!("{}", it.next().expect("a result")?);
    println!("{}", it.next().expect("a result")?);
    let third = it.next_timeout(second).expect("a result")?;
    println!("{third}");
    assert_eq!(third, 4);

    let res = pool.apply_async(sleep, (10,))?;
    match res.get_timeout(second) {
        Err(Error::Timeout) => println!("We lacked patience and got a multiprocessing timeout"),
        other => panic!("a 10 s sleep cannot be done in 1 s: {other:?}"),
    }
    // Leaving `main` drops the pool, which terminates it: the sleeper does
    // not hold the program for 10 s. The callbacks below use their own pool.
    drop(pool);

    let result_list = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::new(4)?;
    for i in 0..10 {
        let log_result = result_list.clone();
        // The callback runs in this process, on the pool's callback thread.
        pool.apply_async_with(
            foo_pool,
            (i,),
            move |r| log_result.lock().unwrap().push(*r),
            |e| eprintln!("foo_pool failed: {e}"),
        )?;
    }
    pool.close();
    pool.join()?;
    let mut result_list = result_list.lock().unwrap().clone();
    println!("{result_list:?}");
    result_list.sort();
    assert_eq!(result_list, (0..10).map(|x| x * x).collect::<Vec<u64>>());
    Ok(())
}
