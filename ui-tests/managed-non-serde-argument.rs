use serde::{Deserialize, Serialize};

struct Item(u32);

#[derive(Serialize, Deserialize)]
struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn add(&mut self, item: Item) {
        self.items.push(item.0);
    }

    fn last(&self) -> Item {
        Item(self.items[self.items.len() - 1])
    }
}

fn main() {}
