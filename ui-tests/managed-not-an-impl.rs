#[multiproc::managed]
struct NotAnImpl;

fn main() {}
