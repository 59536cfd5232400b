//! What Python's pool cannot survive, survived: a worker that segfaults,
//! one that runs too long, and one that panics. The pool reports each as
//! that task's error, replaces the workers it lost, and finishes the rest.

use std::time::{Duration, Instant};

use multiproc::{Error, Pool};

/// A task that goes wrong in one of three ways, or returns `n`.
#[multiproc::remote]
fn task(n: u64) -> u64 {
    match n {
        3 => {
            // The signal a wild pointer in native code would bring.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
            unreachable!("SIGSEGV ends the process")
        }
        5 => {
            std::thread::sleep(Duration::from_secs(60)); // runs too long
            n
        }
        7 => panic!("task {n} found bad input"),
        _ => n * 10,
    }
}

fn main() -> multiproc::Result<()> {
    let pool = Pool::builder().processes(2).task_timeout(Duration::from_secs(2)).build()?;
    let start = Instant::now();
    let results: Vec<_> = pool.imap(task, 0..10)?.collect();
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(v) => println!("task {n}: {v}"),
            Err(Error::ProcessDied { pid, exitcode }) => {
                println!("task {n}: its worker (pid {pid}) died with exit code {exitcode}")
            }
            Err(Error::Timeout) => println!("task {n}: ran past 2 s; its worker was killed"),
            Err(Error::Remote(e)) => println!("task {n}: panicked: {}", e.message()),
            Err(e) => println!("task {n}: {e}"),
        }
    }
    println!("all 10 tasks reported in {:.1} s", start.elapsed().as_secs_f64());

    assert!(matches!(results[3], Err(Error::ProcessDied { exitcode: -11, .. })));
    assert!(matches!(results[5], Err(Error::Timeout)));
    assert!(matches!(&results[7], Err(Error::Remote(e)) if e.message() == "task 7 found bad input"));
    for n in [0, 1, 2, 4, 6, 8, 9] {
        assert_eq!(results[n].as_ref().ok(), Some(&(n as u64 * 10)));
    }
    assert!(start.elapsed() < Duration::from_secs(30));
    // The pool lost two workers and replaced them: it still works.
    assert_eq!(pool.map(task, [1, 2])?, [10, 20]);
    Ok(())
}
