//! What a process knows of itself and its family.

use crate::start::{children, identity};

/// A process's name and pid, as [`current_process`], [`parent_process`] and
/// [`active_children`] report them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
}

impl ProcessInfo {
    /// The process's name: "MainProcess" for the main process.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// This process: "MainProcess" in the main process, the name it was given
/// in a child.
///
/// ```
/// let me = multiproc::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// ```
pub fn current_process() -> ProcessInfo {
    ProcessInfo { name: identity::name(), pid: std::process::id() }
}

/// The process that started this one; `None` in the main process. Never the
/// fork server, even for a child it forked.
///
/// ```
/// assert_eq!(multiproc::parent_process(), None);
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    identity::parent().map(|(name, pid)| ProcessInfo { name, pid })
}

/// The children of this process that are still running. Finished children
/// are reaped first.
///
/// ```
/// assert!(multiproc::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    children::active().iter().map(|c| ProcessInfo { name: c.name().to_owned(), pid: c.pid() }).collect()
}

/// How many CPUs this process may run on (at least 1): the machine's count,
/// narrowed by the CPU affinity mask and cgroup quota where they apply.
///
/// ```
/// assert!(multiproc::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Whether a waiting side may spin, looking for the other's next move
/// before it sleeps: not when this process may run on one CPU only, where
/// spinning keeps the other side from running. Asked once.
pub(crate) fn may_spin() -> bool {
    static MAY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MAY.get_or_init(|| cpu_count() > 1)
}
