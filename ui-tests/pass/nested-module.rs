mod m {
    #[multiproc::remote]
    pub fn f(x: u64) -> u64 {
        x + 1
    }
}

fn main() {
    assert_eq!(m::f(1), 2);
    assert!(<m::f as multiproc::Remote>::NAME.ends_with("m::f"));
    assert_eq!(<m::f as multiproc::Remote>::NAME, concat!(module_path!(), "::m::f"));
}
