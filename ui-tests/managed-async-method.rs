use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    async fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
