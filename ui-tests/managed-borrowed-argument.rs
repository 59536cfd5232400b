use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn add(&mut self, name: &str) {
        self.items.push(name.len() as u32);
    }
}

fn main() {}
