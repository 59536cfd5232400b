struct Point {
    x: i64,
    y: i64,
}

#[multiproc::remote]
fn norm(scale: i64, p: Point) -> i64 {
    scale * (p.x.abs() + p.y.abs())
}

fn main() {
    let _ = norm(2, Point { x: 1, y: 2 });
}
