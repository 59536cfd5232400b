//! The fork server: a fresh, single-threaded copy of the program, started
//! once and held in the constructor before `main`, that forks every child of
//! the `ForkServer` method.
//!
//! The parent sends one [`ForkRequest`] per child on the control socket,
//! with two fds: the child's channel, and a status socket on which the
//! server reports [`ServerReport::Started`] (with a pidfd of the child) and
//! later [`ServerReport::Exited`]. The server reaps its children, so none is
//! ever left a zombie. It ends when the control socket closes (the parent
//! exited) and, at the latest, when the parent's launcher thread dies.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::codec::{self, Encoded, FrameReader, ReadOutcome};
use crate::sys;
use crate::sys::fork_mutex::ForkMutex;
use crate::sys::process::ForkedChild;

use super::children::ChildWatch;
use super::spec::{ForkRequest, ServerHello, ServerReport};
use super::{StartMethod, bootstrap, identity, launcher};

/// How long the parent waits for the server to report a new child, and the
/// server for the parent's hello. Generous: only a wedged machine is slower.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Signals the server holds off; its children take them as usual.
const SERVER_BLOCKED: [i32; 2] = [sys::process::SIGINT, sys::process::SIGTERM];

/// The parent's side of a running server.
#[derive(Debug)]
struct Server {
    control: OwnedFd,
    watch: ChildWatch,
}

static SERVER: ForkMutex<Option<Server>> = ForkMutex::new(None);

fn start_server() -> io::Result<Server> {
    let (control, server_end) = sys::socket::socketpair()?;
    let pid = launcher::exec_server(server_end)?;
    let pidfd = sys::process::pidfd_open(pid)?;
    let watch = ChildWatch::Direct { pid, pidfd };
    let hello = codec::encode(&ServerHello { token: identity::token()? }).map_err(io::Error::other)?;
    codec::write_frame(control.as_fd(), &hello.bytes, &[])?;
    Ok(Server { control, watch })
}

/// Stops and reaps a server that failed, if it is still the current one.
fn discard_server(pid: u32) {
    let mut current = SERVER.lock();
    if current.as_ref().is_some_and(|s| s.watch.pid() == pid) {
        let server = current.take().expect("checked");
        drop(current);
        let _ = server.watch.signal(sys::process::SIGKILL);
        let _ = sys::process::reap(pid);
    }
}

/// Asks the fork server (starting it if needed, restarting it if it died)
/// to fork a child that runs the child protocol on `channel`.
pub(crate) fn fork_child(channel: OwnedFd) -> io::Result<ChildWatch> {
    let request = codec::encode(&ForkRequest).map_err(io::Error::other)?;
    let mut last_error = None;
    for _attempt in 0..2 {
        let (status, status_for_server) = sys::socket::socketpair()?;
        let server_pid = {
            let mut server = SERVER.lock();
            if server.is_none() {
                *server = Some(start_server()?);
            }
            let server = server.as_ref().expect("just started");
            let fds = [channel.as_fd(), status_for_server.as_fd()];
            match codec::write_frame(server.control.as_fd(), &request.bytes, &fds) {
                Ok(()) => Ok(server.watch.pid()),
                Err(e) => Err((server.watch.pid(), e)),
            }
        };
        drop(status_for_server);
        let server_pid = match server_pid {
            Ok(pid) => pid,
            Err((pid, e)) => {
                discard_server(pid);
                last_error = Some(e);
                continue;
            }
        };
        let mut reader = FrameReader::new(4096);
        match reader.read_before(status.as_fd(), Instant::now() + REPLY_TIMEOUT)? {
            Some(frame) => return started(frame, status, reader),
            None => {
                discard_server(server_pid);
                last_error = Some(io::Error::other("the fork server died while starting a child"));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("the fork server could not start a child")))
}

fn started(mut frame: Encoded, status: OwnedFd, reader: FrameReader) -> io::Result<ChildWatch> {
    let pidfd = frame.fds.pop();
    match codec::decode::<ServerReport>(Encoded::from_bytes(frame.bytes)) {
        Ok(ServerReport::Started { pid }) => match pidfd {
            Some(pidfd) => Ok(ChildWatch::Served { pid, pidfd, status, reader }),
            None => Err(io::Error::other("the fork server sent no pidfd")),
        },
        Ok(ServerReport::Failed { error }) => {
            Err(io::Error::other(format!("the fork server could not fork: {error}")))
        }
        Ok(other) => Err(io::Error::other(format!("unexpected report from the fork server: {other:?}"))),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// See [`super::reset_after_fork`].
pub(crate) fn reset_after_fork(proof: &ForkedChild) {
    SERVER.reinit_in_child(proof, None);
}

/// A child of the server, as the server tracks it.
struct Served {
    pid: u32,
    pidfd: OwnedFd,
    status: OwnedFd,
}

/// Runs the fork server on `control` until the parent goes away.
pub(crate) fn serve(control: OwnedFd, token: u64) -> ! {
    // Ctrl-C in a terminal signals the whole process group; the server
    // outlives it (as the parent may), and ends with the parent instead.
    // Blocked rather than ignored: a child forked from here starts with them
    // blocked, and one terminated before it unblocks them still dies.
    sys::process::block_signals(&SERVER_BLOCKED);
    sys::process::ignore_signal(sys::process::SIGPIPE);
    let mut reader = FrameReader::new(4096);
    let hello = reader
        .read_before(control.as_fd(), Instant::now() + REPLY_TIMEOUT)
        .ok()
        .flatten()
        .and_then(|frame| codec::decode::<ServerHello>(frame).ok());
    if hello.is_none_or(|h| h.token != token) {
        bootstrap::refuse("the fork server's parent did not identify itself");
    }
    let mut children: Vec<Served> = Vec::new();
    loop {
        let mut fds: Vec<BorrowedFd<'_>> = vec![control.as_fd()];
        fds.extend(children.iter().map(|c| c.pidfd.as_fd()));
        let ready = match sys::poll::wait_readable_many(&fds, None) {
            Ok(ready) => ready,
            Err(_) => sys::process::exit_immediately(1),
        };
        drop(fds);
        for i in (0..children.len()).rev() {
            if ready[i + 1]
                && let Ok(Some(exitcode)) = sys::process::try_reap(children[i].pid)
            {
                let child = children.swap_remove(i);
                report(&child.status, &ServerReport::Exited { exitcode }, &[]);
            }
        }
        if ready[0] {
            loop {
                match reader.read(control.as_fd(), true) {
                    Ok(ReadOutcome::Frame(frame)) => {
                        if let Some(child) = fork_for(frame) {
                            children.push(child);
                        }
                    }
                    Ok(ReadOutcome::WouldBlock) => break,
                    Ok(ReadOutcome::Eof) => std::process::exit(0),
                    Err(_) => sys::process::exit_immediately(1),
                }
            }
        }
    }
}

/// Handles one request: forks the child and reports it.
fn fork_for(frame: Encoded) -> Option<Served> {
    let Encoded { bytes, fds } = frame;
    let Ok([channel, status]) = <[OwnedFd; 2]>::try_from(fds) else {
        return None;
    };
    if codec::decode::<ForkRequest>(Encoded::from_bytes(bytes)).is_err() {
        return None;
    }
    let keep = channel.as_raw_fd();
    let forked = sys::process::fork_with(move |_proof| {
        // The copy holds the server's fds (control socket, other children's
        // status sockets and pidfds): close them all, by number; their
        // owners live in frames this process never returns to.
        sys::fd::close_all_except(keep);
        sys::process::unblock_signals(&SERVER_BLOCKED);
        bootstrap::run_child(channel, None, StartMethod::ForkServer)
    });
    let pid = match forked {
        Ok(pid) => pid,
        Err(e) => {
            report(&status, &ServerReport::Failed { error: e.to_string() }, &[]);
            return None;
        }
    };
    let pidfd = match sys::process::pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(e) => {
            report(&status, &ServerReport::Failed { error: e.to_string() }, &[]);
            let _ = sys::process::reap(pid);
            return None;
        }
    };
    report(&status, &ServerReport::Started { pid }, &[pidfd.as_fd()]);
    Some(Served { pid, pidfd, status })
}

/// Sends a report to the parent. A parent that went away is not the
/// server's concern: the child dies with the parent regardless.
fn report(status: &OwnedFd, report: &ServerReport, fds: &[BorrowedFd<'_>]) {
    if let Ok(frame) = codec::encode(report) {
        let _ = codec::write_frame(status.as_fd(), &frame.bytes, fds);
    }
}
