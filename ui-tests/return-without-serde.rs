struct Point {
    x: i64,
    y: i64,
}

#[multiproc::remote]
fn origin() -> Point {
    Point { x: 0, y: 0 }
}

fn main() {
    let p = origin();
    let _ = p.x + p.y;
}
