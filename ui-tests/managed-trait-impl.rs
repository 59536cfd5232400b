use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Clone for Store {
    fn clone(&self) -> Self {
        Store { items: self.items.clone() }
    }
}

fn main() {}
