use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn into_items(self) -> Vec<u32> {
        self.items
    }
}

fn main() {}
