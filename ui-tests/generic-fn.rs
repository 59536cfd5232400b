#[multiproc::remote]
fn first<T>(items: Vec<T>) -> Option<T> {
    items.into_iter().next()
}

fn main() {
    let _ = first(vec![1]);
}
