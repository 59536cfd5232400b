use multiproc::Remote;

#[multiproc::remote]
fn answer() -> u64 {
    42
}

fn main() -> multiproc::Result<()> {
    assert_eq!(answer(), 42);
    assert_eq!(answer.call(()), 42);
    let args: <answer as Remote>::Args = ();
    assert_eq!(multiproc::spawn(answer, args)?.join()?, 42);
    Ok(())
}
