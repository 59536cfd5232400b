use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Store {
    items: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn add(&mut self, item: &str) {
        self.items.push(item.to_owned());
    }

    fn first(&self) -> &String {
        &self.items[0]
    }
}

fn main() {}
