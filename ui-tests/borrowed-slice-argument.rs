#[multiproc::remote]
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

fn main() {
    let _ = checksum(&[1, 2, 3]);
}
