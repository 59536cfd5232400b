//! The seed notes' Lock example: ten processes each print a line while
//! holding one shared lock, so no two lines interleave.

use std::io::Write;

use multiproc::{Lock, Process};

#[multiproc::remote]
fn f(l: Lock, i: u32) {
    let _held = l.acquire().expect("acquire");
    // Under the lock, the line goes out whole, and is flushed before the
    // next process may print.
    let mut out = std::io::stdout().lock();
    writeln!(out, "Hello world {i}").expect("print");
    out.flush().expect("flush");
}

fn main() -> multiproc::Result<()> {
    let lock = Lock::new()?;
    let children = (0..10)
        .map(|num| Process::builder().spawn(f, (lock.clone(), num)))
        .collect::<multiproc::Result<Vec<_>>>()?;
    for child in children {
        child.join()?;
    }
    assert!(!lock.locked(), "every child released the lock");
    Ok(())
}
