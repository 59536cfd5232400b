struct Counter {
    n: u64,
}

impl Counter {
    #[multiproc::remote]
    fn f(&self) -> u64 {
        self.n
    }
}

fn main() {
    let c = Counter { n: 1 };
    let _ = c.f();
}
