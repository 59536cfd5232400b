#[multiproc::remote]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _ = multiproc::spawn(square, ("x",));
}
