//! The launcher: one long-lived thread that starts every direct child.
//!
//! A child asks the kernel for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`), but the kernel sends it when the *thread* that
//! forked the child exits, not the process. A child forked by a short-lived
//! helper thread would die with that thread. So every fork of this process
//! (and every `posix_spawn`) happens on this thread, which lives as long as
//! the process.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Once;
use std::sync::mpsc::{self, Sender, SyncSender};

use crate::sys;
use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::{ExecImage, ForkedChild};

use super::StartMethod;
use super::bootstrap;
use super::children::ChildWatch;

enum Job {
    /// Start a process executing `image`, with `keep` as its only inherited fd.
    Exec { image: ExecImage, keep: OwnedFd, reply: SyncSender<io::Result<u32>> },
    /// Fork, and run the child protocol on `channel` in the copy.
    Fork { channel: OwnedFd, reply: SyncSender<io::Result<u32>> },
}

static LAUNCHER: ForkMutex<Option<Sender<Job>>> = ForkMutex::new(None);

/// Stack of the launcher thread, which is also the stack a `Fork` child
/// runs its target on: as large as a main thread's.
const STACK_SIZE: usize = 8 << 20;

fn submit(make: impl FnOnce(SyncSender<io::Result<u32>>) -> Job) -> io::Result<u32> {
    let (reply, answer) = mpsc::sync_channel(1);
    let sender = {
        let mut launcher = LAUNCHER.lock();
        if launcher.is_none() {
            *launcher = Some(start_thread()?);
        }
        launcher.clone().expect("just started")
    };
    sender.send(make(reply)).map_err(|_| io::Error::other("the launcher thread is gone"))?;
    answer.recv().map_err(|_| io::Error::other("the launcher thread dropped a request"))?
}

fn start_thread() -> io::Result<Sender<Job>> {
    let (sender, jobs) = mpsc::channel::<Job>();
    std::thread::Builder::new().name("multiproc-launcher".to_owned()).stack_size(STACK_SIZE).spawn(
        move || {
            for job in jobs {
                run(job);
            }
        },
    )?;
    Ok(sender)
}

fn run(job: Job) {
    match job {
        Job::Exec { image, keep, reply } => {
            let started = sys::process::spawn_exec(&image, keep.as_fd());
            // The child has its copy: ours is closed before the caller
            // hears back, so the caller never sees it open.
            drop(keep);
            let _ = reply.send(started);
        }
        Job::Fork { channel, reply } => {
            warn_if_threaded();
            let forked = sys::process::fork_with(|proof| {
                super::reset_after_fork(proof);
                bootstrap::run_child(channel, None, StartMethod::Fork)
            });
            let _ = reply.send(forked);
        }
    }
}

/// Logs, once per process, that forking a multithreaded process is unsafe.
/// The launcher and the thread waiting on it do not count.
fn warn_if_threaded() {
    static WARNED: Once = Once::new();
    if let Ok(threads) = sys::process::thread_count()
        && threads > 2
    {
        WARNED.call_once(|| {
            log::warn!(
                "multiproc: this process (pid={}) has {} threads; use of the fork start \
                 method may deadlock the child if another thread holds a lock. \
                 Prefer StartMethod::ForkServer or StartMethod::Spawn.",
                std::process::id(),
                threads - 1
            )
        });
    }
}

/// Starts a child as a fresh execution of this program, with `channel` as
/// its end of the child protocol.
pub(crate) fn spawn_child(channel: OwnedFd) -> io::Result<ChildWatch> {
    let image = bootstrap::child_image(bootstrap::Role::Spawned)?;
    let pid = submit(|reply| Job::Exec { image, keep: channel, reply })?;
    let pidfd = sys::process::pidfd_open(pid)?;
    Ok(ChildWatch::Direct { pid, pidfd })
}

/// Starts a fork server: a fresh execution of this program that serves on
/// `control`. Returns its pid.
pub(crate) fn exec_server(control: OwnedFd) -> io::Result<u32> {
    let image = bootstrap::child_image(bootstrap::Role::ForkServer)?;
    submit(|reply| Job::Exec { image, keep: control, reply })
}

/// Starts a process executing `image` that does not stay this process's
/// child: it leaves at once (see `sys::process::detach`), and the one that
/// leaves is reaped here.
pub(crate) fn spawn_detached(image: ExecImage, keep: OwnedFd) -> io::Result<()> {
    let pid = submit(|reply| Job::Exec { image, keep, reply })?;
    sys::process::reap(pid).map(drop)
}

/// Starts a child as a fork of this process.
pub(crate) fn fork_child(channel: OwnedFd) -> io::Result<ChildWatch> {
    let pid = submit(|reply| Job::Fork { channel, reply })?;
    let pidfd = sys::process::pidfd_open(pid)?;
    Ok(ChildWatch::Direct { pid, pidfd })
}

/// See [`super::reset_after_fork`].
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    LAUNCHER.reinit_in_child(proof, None);
}
