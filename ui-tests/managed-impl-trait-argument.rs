use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn extend(&mut self, items: impl IntoIterator<Item = u32>) {
        self.items.extend(items);
    }
}

fn main() {}
