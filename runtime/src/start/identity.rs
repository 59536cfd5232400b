//! Who this process is: its name, its place in the process tree, its parent.

use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::ForkedChild;
use crate::sys::random::random_u64;

use super::spec::ChildSpec;

#[derive(Debug)]
struct Identity {
    name: String,
    path: Vec<u32>,
    children_started: u32,
    parent: Option<(String, u32)>,
    daemon: bool,
    /// A secret of this process, given to the children it spawns so they can
    /// tell their spec from a forged one.
    token: u64,
}

impl Identity {
    fn main() -> Self {
        Identity {
            name: "MainProcess".to_owned(),
            path: Vec::new(),
            children_started: 0,
            parent: None,
            daemon: false,
            token: 0,
        }
    }
}

static IDENTITY: ForkMutex<Option<Identity>> = ForkMutex::new(None);

fn with<R>(f: impl FnOnce(&mut Identity) -> R) -> R {
    let mut guard = IDENTITY.lock();
    f(guard.get_or_insert_with(Identity::main))
}

/// This process's name: "MainProcess" in the main process.
pub(crate) fn name() -> String {
    with(|id| id.name.clone())
}

/// The name and pid of the process that started this one.
pub(crate) fn parent() -> Option<(String, u32)> {
    with(|id| id.parent.clone())
}

/// Whether this process is a daemon.
pub(crate) fn is_daemon() -> bool {
    with(|id| id.daemon)
}

/// This process's token, drawn on first use.
pub(crate) fn token() -> std::io::Result<u64> {
    with(|id| {
        if id.token == 0 {
            id.token = random_u64()? | 1;
        }
        Ok(id.token)
    })
}

/// The default name and the tree path of the next child: `Process-3` for
/// the third child of the main process, `Process-4:1` for the first child
/// of `Process-4`.
pub(crate) fn next_child() -> (String, Vec<u32>) {
    with(|id| {
        id.children_started += 1;
        let mut path = id.path.clone();
        path.push(id.children_started);
        let numbers: Vec<String> = path.iter().map(u32::to_string).collect();
        (format!("Process-{}", numbers.join(":")), path)
    })
}

/// Takes on the identity the parent gave this child.
pub(crate) fn become_child(spec: &ChildSpec) {
    let mut guard = IDENTITY.lock();
    *guard = Some(Identity {
        name: spec.name.clone(),
        path: spec.path.clone(),
        children_started: 0,
        parent: Some((spec.parent_name.clone(), spec.parent_pid)),
        daemon: spec.daemon,
        token: 0,
    });
}

/// See [`super::reset_after_fork`].
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    IDENTITY.reinit_in_child(proof, None);
}
