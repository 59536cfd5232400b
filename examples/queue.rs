//! The seed notes' Queue example: ten processes each put their number in
//! one queue and exit; the parent joins them all, then takes out as many
//! items as the queue holds.
//!
//! In Python this relies on each child's feeder thread flushing before the
//! child exits. Here `put` has copied the item into the shared queue by the
//! time it returns, so there is nothing to flush.

use multiproc::{Process, Queue};

#[multiproc::remote]
fn f(q: Queue<u32>, name: u32) {
    q.put(name).expect("put");
}

fn main() -> multiproc::Result<()> {
    let q = Queue::new()?;
    for i in 0..10 {
        let p = Process::builder().spawn(f, (q.clone(), i))?;
        p.join()?;
    }
    let mut got = Vec::new();
    for _ in 0..q.len() {
        let item = q.get()?;
        println!("{item}");
        got.push(item);
    }
    assert_eq!(got, (0..10).collect::<Vec<_>>(), "each child's number, in the order they ran");
    Ok(())
}
