#[multiproc::remote]
fn total(items: Vec<u64>) -> u64
where
    u64: Copy,
{
    items.iter().sum()
}

fn main() {
    let _ = total(vec![1, 2]);
}
