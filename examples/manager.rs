//! The seed notes' Manager example: a child fills a managed dict with keys
//! and values of mixed types and reverses a managed list; the parent,
//! which holds proxies of the same objects, prints both.
//!
//! Python's dict takes any mix of keys; here the mix is a `Py` enum, and
//! the manager compares keys by their encoded bytes, so a float key works.

use std::fmt;

use multiproc::{DictProxy, ListProxy, Manager};
use serde::{Deserialize, Serialize};

/// A Python value of the kinds the example uses, printed as Python would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Py {
    Int(i64),
    Float(f64),
    Str(String),
    None,
}

impl fmt::Display for Py {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Py::Int(i) => write!(f, "{i}"),
            Py::Float(x) => write!(f, "{x}"),
            Py::Str(s) => write!(f, "'{s}'"),
            Py::None => f.write_str("None"),
        }
    }
}

#[multiproc::remote]
fn fill(d: DictProxy<Py, Py>, l: ListProxy<i64>) {
    d.insert(Py::Int(1), Py::Str("1".into())).expect("insert");
    d.insert(Py::Str("2".into()), Py::Int(2)).expect("insert");
    d.insert(Py::Float(0.25), Py::None).expect("insert");
    l.reverse().expect("reverse");
}

fn main() -> multiproc::Result<()> {
    let manager = Manager::start()?;
    let d = manager.dict::<Py, Py>()?;
    let l = manager.list_from(0..10)?;

    multiproc::spawn(fill, (d.clone(), l.clone()))?.join()?;

    let items = d.items()?;
    let shown: Vec<String> = items.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("{{{}}}", shown.join(", "));
    let list = l.to_vec()?;
    println!("{list:?}");

    assert_eq!(
        items,
        vec![
            (Py::Int(1), Py::Str("1".into())),
            (Py::Str("2".into()), Py::Int(2)),
            (Py::Float(0.25), Py::None),
        ]
    );
    assert_eq!(list, (0..10).rev().collect::<Vec<_>>());
    manager.shutdown()
}
