use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn clone(&self) -> Store {
        Store { items: self.items.clone() }
    }
}

fn main() {}
