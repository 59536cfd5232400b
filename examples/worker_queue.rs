//! A work list on a JoinableQueue: the parent puts tasks, several consumer
//! processes take them, put their results in a second queue and mark each
//! task done; `join` returns once every task is done. Closing the work
//! queue then ends the consumers.

use multiproc::{Error, JoinableQueue, Queue};

/// How many ways `n` can be written as an ordered sum of 1s and 2s: a
/// little work per task.
fn ways(n: u64) -> u64 {
    (0..n).fold((1u64, 1u64), |(a, b), _| (b, a.wrapping_add(b))).0
}

#[multiproc::remote]
fn consumer(id: u32, tasks: JoinableQueue<u64>, results: Queue<(u64, u64, u32)>) -> u32 {
    let mut done = 0;
    loop {
        match tasks.get() {
            Ok(n) => {
                results.put((n, ways(n), id)).expect("put a result");
                tasks.task_done().expect("one task_done per task");
                done += 1;
            }
            Err(Error::Closed) => return done,
            Err(e) => panic!("consumer {id}: {e}"),
        }
    }
}

fn main() -> multiproc::Result<()> {
    let tasks = JoinableQueue::new()?;
    let results = Queue::new()?;
    let consumers = (0..4)
        .map(|id| multiproc::spawn(consumer, (id, tasks.clone(), results.clone())))
        .collect::<multiproc::Result<Vec<_>>>()?;
    for n in 0..200 {
        tasks.put(n)?;
    }
    tasks.join()?;
    println!("all {} tasks done; {} results waiting", 200, results.len());
    assert_eq!(results.len(), 200);

    tasks.close();
    let per_consumer = consumers.into_iter().map(|c| c.join()).collect::<multiproc::Result<Vec<_>>>()?;
    println!("tasks per consumer: {per_consumer:?}");
    assert_eq!(per_consumer.iter().sum::<u32>(), 200);

    let mut all: Vec<(u64, u64, u32)> = results.try_iter().collect();
    all.sort_unstable();
    for (n, w, _) in &all {
        assert_eq!(*w, ways(*n));
    }
    println!("ways(10) = {}, ways(90) = {}", all[10].1, all[90].1);
    Ok(())
}
