fn plain(x: u64) -> u64 {
    x * x
}

fn main() {
    let _ = multiproc::spawn(plain, (1,));
}
