//! Two #[remote] fns under one name are reported before any child starts,
//! naming both places. A file of its own: the ambiguity blocks every start
//! in the binary that has it.

use multiproc::Error;

fn first() -> multiproc::Result<u32> {
    #[multiproc::remote]
    fn helper() -> u32 {
        1
    }
    multiproc::spawn(helper, ())?.join()
}

fn second() -> multiproc::Result<u32> {
    #[multiproc::remote]
    fn helper() -> u32 {
        2
    }
    multiproc::spawn(helper, ())?.join()
}

#[test]
fn duplicate_names_are_reported_naming_both_places() {
    for result in [first(), second()] {
        match result {
            Err(Error::DuplicateFunction { name, first, second }) => {
                assert_eq!(name, "duplicate_names::helper");
                assert!(first.starts_with("tests/duplicate_names.rs:"), "{first}");
                assert!(second.starts_with("tests/duplicate_names.rs:"), "{second}");
                assert_ne!(first, second);
                let shown = Error::DuplicateFunction { name, first, second }.to_string();
                assert!(shown.contains("rename one"), "{shown}");
            }
            other => panic!("expected a duplicate-name error, got {other:?}"),
        }
    }
    assert!(multiproc::active_children().is_empty(), "no child may start");
}
