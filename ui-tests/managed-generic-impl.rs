use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store<T> {
    items: Vec<T>,
}

#[multiproc::managed]
impl<T: Clone> Store<T> {
    fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
