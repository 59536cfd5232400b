use multiproc::Remote;

#[multiproc::remote]
fn check_positive(x: i64) {
    assert!(x > 0, "{x} is not positive");
}

fn main() -> multiproc::Result<()> {
    check_positive(1);
    let () = check_positive.call((2,));
    let () = multiproc::spawn(check_positive, (3,))?.join()?;
    Ok(())
}
