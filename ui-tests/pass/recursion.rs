use multiproc::Remote;

#[multiproc::remote]
fn factorial(n: u64) -> u64 {
    if n <= 1 { 1 } else { n * factorial(n - 1) }
}

fn main() -> multiproc::Result<()> {
    assert_eq!(factorial(5), 120);
    assert_eq!(factorial.call((6,)), 720);
    assert_eq!(multiproc::spawn(factorial, (10,))?.join()?, 3_628_800);
    Ok(())
}
