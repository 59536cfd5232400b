//! The seed notes' "local and remote" managers: a queue served on TCP by a
//! manager's process, fed by one process and drained by another, which
//! know nothing of it but its address and the key.
//!
//! Python's version registers a `get_queue` callable on a `BaseManager`
//! subclass in the serving program and the same name in the others; here
//! the server publishes the queue as `jobs` and the others look it up.

use multiproc::{Manager, QueueProxy};

const KEY: &[u8] = b"shared by every program of this example";

/// A program that knows only where the manager is: puts the jobs.
#[multiproc::remote]
fn feed(address: String, jobs: u32) {
    let manager = Manager::connect(address.as_str(), KEY).expect("connect");
    let queue: QueueProxy<String> = manager.lookup("jobs").expect("lookup");
    for i in 0..jobs {
        queue.put(format!("job {i}")).expect("put");
    }
    queue.put("stop".to_owned()).expect("put");
}

/// Another: takes the jobs until told to stop.
#[multiproc::remote]
fn drain(address: String) -> Vec<String> {
    let manager = Manager::connect(address.as_str(), KEY).expect("connect");
    let queue: QueueProxy<String> = manager.lookup("jobs").expect("lookup");
    let mut done = Vec::new();
    loop {
        let job = queue.get().expect("get");
        if job == "stop" {
            return done;
        }
        done.push(job);
    }
}

fn main() -> multiproc::Result<()> {
    // The serving side: a manager on a free TCP port of 127.0.0.1.
    let manager = Manager::builder().address("127.0.0.1:0")?.authkey(KEY).start()?;
    let queue = manager.queue::<String>()?;
    manager.publish("jobs", &queue)?;
    let address = manager.address().to_string();
    println!("manager serving at {address}");

    let drainer = multiproc::spawn(drain, (address.clone(),))?;
    let feeder = multiproc::spawn(feed, (address, 5))?;
    feeder.join()?;
    let done = drainer.join()?;
    for job in &done {
        println!("drained {job}");
    }
    assert_eq!(done, (0..5).map(|i| format!("job {i}")).collect::<Vec<_>>());
    manager.shutdown()
}
