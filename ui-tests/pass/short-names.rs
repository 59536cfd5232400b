// Remote fns may have any name, including the names of the parameters and
// methods the attribute generates around them.

#[multiproc::remote]
fn f(x: u64) -> u64 {
    x * x
}

#[multiproc::remote]
fn input(x: u64) -> u64 {
    x + 1
}

#[multiproc::remote]
fn arg0(arg1: u64) -> u64 {
    arg1
}

#[multiproc::remote]
fn fmt(x: u64) -> String {
    x.to_string()
}

fn main() -> multiproc::Result<()> {
    assert_eq!(multiproc::spawn(f, (3,))?.join()?, 9);
    assert_eq!(multiproc::spawn(input, (3,))?.join()?, 4);
    assert_eq!(multiproc::spawn(arg0, (3,))?.join()?, 3);
    assert_eq!(multiproc::spawn(fmt, (3,))?.join()?, "3");
    Ok(())
}
