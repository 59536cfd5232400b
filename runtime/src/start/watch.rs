//! Deaths of other processes, children or not: one thread per process
//! watches their pidfds and calls back when one of them ends.
//!
//! A futex cannot be polled, so a process asleep on one cannot also wait
//! for a pidfd. This thread does the waiting for the whole process: for a
//! barrier, the callback breaks it, which wakes the futex sleepers.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};

use crate::sys;
use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::ForkedChild;

/// One process, named for good: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) pid: u32,
    pub(crate) start: u64,
}

impl Member {
    /// This process.
    pub(crate) fn me() -> std::io::Result<Member> {
        static ME: Mutex<Option<Member>> = Mutex::new(None);
        let pid = std::process::id();
        let mut me = ME.lock().unwrap_or_else(PoisonError::into_inner);
        match *me {
            // A forked child has the parent's copy: the pid tells.
            Some(m) if m.pid == pid => Ok(m),
            _ => {
                let m = Member { pid, start: sys::process::start_time(pid)? };
                *me = Some(m);
                Ok(m)
            }
        }
    }

    /// A pidfd for this process, or `None` if it has ended.
    pub(crate) fn pidfd(&self) -> Option<OwnedFd> {
        let pidfd = sys::process::pidfd_open(self.pid).ok()?;
        // The pid may name a newer process: the start time tells. Checked
        // after opening, so the pidfd is for the process checked.
        (sys::process::start_time(self.pid).ok() == Some(self.start)).then_some(pidfd)
    }
}

type OnDeath = Arc<dyn Fn(Member) + Send + Sync>;

struct Watch {
    /// Which object: every watch of an object is replaced at once.
    key: usize,
    member: Member,
    pidfd: Arc<OwnedFd>,
    on_death: OnDeath,
}

struct Watcher {
    watches: Arc<Mutex<Vec<Watch>>>,
    /// Written to make the thread look at `watches` again.
    bell: UnixStream,
}

static WATCHER: ForkMutex<Option<Watcher>> = ForkMutex::new(None);

/// Watches `members` (with their pidfds) for the object `key`, instead of
/// what was watched for it before: `on_death` runs on the watcher thread
/// when one of them ends.
pub(crate) fn watch(key: usize, members: Vec<(Member, OwnedFd)>, on_death: OnDeath) -> std::io::Result<()> {
    let mut watcher = WATCHER.lock();
    if watcher.is_none() {
        *watcher = Some(start()?);
    }
    let watcher = watcher.as_mut().expect("just started");
    {
        let mut watches = watcher.watches.lock().unwrap_or_else(PoisonError::into_inner);
        watches.retain(|w| w.key != key);
        watches.extend(members.into_iter().map(|(member, pidfd)| Watch {
            key,
            member,
            pidfd: Arc::new(pidfd),
            on_death: on_death.clone(),
        }));
    }
    watcher.bell.write_all(&[1])
}

/// Stops watching for the object `key`.
pub(crate) fn forget(key: usize) {
    let mut watcher = WATCHER.lock();
    if let Some(watcher) = watcher.as_mut() {
        watcher.watches.lock().unwrap_or_else(PoisonError::into_inner).retain(|w| w.key != key);
        let _ = watcher.bell.write_all(&[1]);
    }
}

/// See [`super::reset_after_fork`]: a forked child has no watcher thread.
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    WATCHER.reinit_in_child(proof, None);
}

fn start() -> std::io::Result<Watcher> {
    let (bell, mut rung) = UnixStream::pair()?;
    let watches: Arc<Mutex<Vec<Watch>>> = Arc::default();
    let shared = watches.clone();
    std::thread::Builder::new().name("multiproc-watch".to_owned()).spawn(move || {
        loop {
            let pidfds: Vec<Arc<OwnedFd>> = shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|w| w.pidfd.clone())
                .collect();
            let fds: Vec<_> = std::iter::once(rung.as_fd()).chain(pidfds.iter().map(|p| p.as_fd())).collect();
            let Ok(ready) = sys::poll::wait_readable_many(&fds, None) else { return };
            if ready[0] {
                let mut drain = [0u8; 64];
                match rung.read(&mut drain) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let ended: Vec<&Arc<OwnedFd>> =
                pidfds.iter().zip(&ready[1..]).filter(|(_, r)| **r).map(|(p, _)| p).collect();
            if ended.is_empty() {
                continue;
            }
            let dead: Vec<Watch> = {
                let mut watches = shared.lock().unwrap_or_else(PoisonError::into_inner);
                let (dead, alive) = std::mem::take(&mut *watches)
                    .into_iter()
                    .partition(|w| ended.iter().any(|p| Arc::ptr_eq(p, &w.pidfd)));
                *watches = alive;
                dead
            };
            for w in dead {
                (w.on_death)(w.member);
            }
        }
    })?;
    Ok(Watcher { watches, bell })
}
