mod shapes {
    #[multiproc::remote]
    pub(crate) fn area(w: u64, h: u64) -> u64 {
        w * h
    }
}

fn main() {
    use multiproc::Remote;

    assert_eq!(shapes::area(2, 3), 6);
    assert_eq!(shapes::area.call((4, 5)), 20);
}
