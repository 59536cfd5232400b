#[multiproc::remote]
unsafe fn read(x: u64) -> u64 {
    x
}

fn main() {
    let _ = unsafe { read(1) };
}
