//! Two programs that share no parent share memory by name, as with Python's
//! `multiprocessing.shared_memory`: this program creates a block, then runs
//! a second copy of itself (a separate program, started with
//! `std::process::Command`) that opens the block by name, reads it, and
//! writes an answer.
//!
//! The block's name is removed at the end; had the program not unlinked it,
//! the runtime would remove it once both programs have ended.

use std::process::Command;

use multiproc::SharedMemory;

const QUESTION: &[u8] = b"how many bytes are shared?";
const ANSWER_AT: usize = 1024;

fn main() -> multiproc::Result<()> {
    let mut args = std::env::args().skip(1);
    if let (Some(role), Some(name)) = (args.next(), args.next())
        && role == "reader"
    {
        return reader(&name);
    }

    let block = SharedMemory::create_unique(4096)?;
    block.write_at(0, QUESTION);
    println!("created {} ({} bytes)", block.name(), block.len());

    let status = Command::new(std::env::current_exe()?).args(["reader", block.name()]).status()?;
    assert!(status.success(), "the reader failed: {status}");

    let mut answer = [0u8; 8];
    block.read_at(ANSWER_AT, &mut answer);
    let answer = u64::from_le_bytes(answer);
    println!("the reader answered {answer}");
    assert_eq!(answer, 4096);
    block.unlink()?;
    Ok(())
}

/// The second program: knows only the name.
fn reader(name: &str) -> multiproc::Result<()> {
    let block = SharedMemory::open(name)?;
    let mut question = vec![0u8; QUESTION.len()];
    block.read_at(0, &mut question);
    println!("reader {} read: {}", std::process::id(), String::from_utf8_lossy(&question));
    assert_eq!(question, QUESTION);
    block.write_at(ANSWER_AT, &(block.len() as u64).to_le_bytes());
    Ok(())
}
