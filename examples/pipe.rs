//! The seed notes' Pipe example: a child sends `[42, None, 'Hello']` through
//! one end of a pipe and closes it; the parent receives it from the other.

use multiproc::connection::Connection;
use serde::{Deserialize, Serialize};

/// Python's `[42, None, 'Hello']`, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Item {
    Int(i64),
    None,
    Str(String),
}

#[multiproc::remote]
fn f(conn: Connection<Vec<Item>>) {
    conn.send(vec![Item::Int(42), Item::None, Item::Str("Hello".to_owned())]).expect("send");
    // Dropping `conn` closes the child's end, as conn.close() does.
}

fn main() -> multiproc::Result<()> {
    let (parent_conn, child_conn) = multiproc::pipe()?;
    let p = multiproc::spawn(f, (child_conn,))?;
    let received = parent_conn.recv()?;
    println!("{received:?}");
    p.join()?;
    assert_eq!(received, vec![Item::Int(42), Item::None, Item::Str("Hello".to_owned())]);
    // The child's end is closed: nothing more will come.
    assert!(matches!(parent_conn.recv(), Err(multiproc::Error::Closed)));
    Ok(())
}
