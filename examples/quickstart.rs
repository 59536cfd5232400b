//! The quick start: run a few remote fns in child processes and collect
//! their results.

use multiproc::{Process, current_process};

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn greet(name: String) -> String {
    format!("hello {name}, from {} (pid {})", current_process().name(), std::process::id())
}

fn main() -> multiproc::Result<()> {
    let children = (1..=4).map(|x| multiproc::spawn(square, (x,))).collect::<multiproc::Result<Vec<_>>>()?;
    let squares = children.into_iter().map(Process::join).collect::<multiproc::Result<Vec<u64>>>()?;
    println!("squares: {squares:?}");
    assert_eq!(squares, [1, 4, 9, 16]);

    let p = Process::builder().name("greeter").spawn(greet, ("world".to_owned(),))?;
    let child_pid = p.pid();
    let greeting = p.join()?;
    println!("{greeting}");
    assert_eq!(greeting, format!("hello world, from greeter (pid {child_pid})"));
    assert_ne!(child_pid, std::process::id());
    Ok(())
}
