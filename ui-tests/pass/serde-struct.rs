use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[multiproc::remote]
fn mirror(p: Point) -> Point {
    Point { x: -p.x, y: -p.y }
}

fn main() -> multiproc::Result<()> {
    assert_eq!(mirror(Point { x: 1, y: 2 }), Point { x: -1, y: -2 });
    assert_eq!(multiproc::spawn(mirror, (Point { x: 3, y: -4 },))?.join()?, Point { x: -3, y: 4 });
    Ok(())
}
