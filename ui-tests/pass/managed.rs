use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Store {
    items: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn new() -> Store {
        Store::default()
    }

    /// Adds an item; its index.
    fn add(&mut self, item: String) -> usize {
        self.items.push(item);
        self.items.len() - 1
    }

    fn get(&self, index: usize) -> Option<String> {
        self.items.get(index).cloned()
    }

    fn copy(&self) -> Self {
        Store { items: self.items.clone() }
    }

    fn clear(&mut self) {
        self.items.clear();
    }
}

fn use_proxy(store: &StoreProxy) -> multiproc::Result<Option<String>> {
    store.add("a".to_owned())?;
    store.clear()?;
    let _copy: Store = store.copy()?;
    store.get(0)
}

fn main() {
    let _ = Store::new();
    let _ = use_proxy;
}
