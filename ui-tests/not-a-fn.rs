#[multiproc::remote]
struct Square {
    x: u64,
}

fn main() {
    let _ = Square { x: 3 }.x;
}
