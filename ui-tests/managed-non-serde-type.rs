struct Store {
    items: Vec<u32>,
}

#[multiproc::managed]
impl Store {
    fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
