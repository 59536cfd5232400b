use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn first(&self) -> &u32 {
        &self.items[0]
    }
}

fn main() {}
