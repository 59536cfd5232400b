//! The quick start: the seed notes' first example (`Pool(5).map(f, [1, 2,
//! 3, 4])`), then remote fns run in child processes one by one.

use multiproc::{Pool, Process, current_process};

#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn greet(name: String) -> String {
    format!("hello {name}, from {} (pid {})", current_process().name(), std::process::id())
}

fn main() -> multiproc::Result<()> {
    let pool = Pool::new(5)?; // five worker processes
    let mapped = pool.map(square, [1, 2, 3, 4])?;
    println!("{mapped:?}");
    assert_eq!(mapped, [1, 4, 9, 16]);

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
