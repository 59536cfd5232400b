//! Creating, signalling and reaping processes.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::{cvt, cvt_retry};

/// `SIGTERM`, sent by `Process::terminate`.
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
/// `SIGKILL`, sent by `Process::kill`.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// Proof that the code holding it runs in a child right after `fork`, on
/// the only thread the child has. See [`fork_with`].
#[derive(Debug)]
pub(crate) struct ForkedChild(());

/// The fd number a child started by [`spawn_exec`] finds its inherited
/// socket at.
pub(crate) const INHERITED_FD: RawFd = 3;

/// Starts a process executing `image`, with `keep` as its fd
/// [`INHERITED_FD`] and no other fd besides stdin, stdout and stderr.
/// Returns the child's pid.
///
/// Uses `posix_spawn`, which glibc implements with
/// `clone(CLONE_VM | CLONE_VFORK)`: the parent's page tables are not copied
/// and nothing of the parent is written until the child has called `exec`,
/// which makes it several times cheaper than `fork` + `exec` from a large
/// parent. `posix_spawn` cannot ask for a parent-death signal, so the child
/// does that itself first thing (see `die_with_parent`); the kernel ties it
/// to the calling thread either way.
pub(crate) fn spawn_exec(image: &ExecImage, keep: BorrowedFd<'_>) -> io::Result<u32> {
    /// Checks a `posix_spawn*` return value, which is an error number.
    fn check(ret: libc::c_int) -> io::Result<()> {
        if ret == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(ret)) }
    }
    // SAFETY: all-zero values are valid to pass to the matching `_init`
    // calls, which initialise them before any other use.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut attr: libc::posix_spawnattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer passed is to a live, initialised value owned by
    // this frame or by `image`; the `_destroy` calls run on every path after
    // the matching `_init` succeeded.
    unsafe {
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        let result = (|| {
            check(libc::posix_spawn_file_actions_adddup2(&mut actions, keep.as_raw_fd(), INHERITED_FD))?;
            check(libc::posix_spawn_file_actions_addclosefrom_np(&mut actions, INHERITED_FD + 1))?;
            check(libc::posix_spawnattr_init(&mut attr))?;
            let mut pid: libc::pid_t = 0;
            let spawned = check(libc::posix_spawn(
                &mut pid,
                image.path.as_ptr(),
                &actions,
                &attr,
                image.argv_ptrs.as_ptr().cast(),
                image.envp_ptrs.as_ptr().cast(),
            ));
            libc::posix_spawnattr_destroy(&mut attr);
            spawned.map(|()| pid as u32)
        })();
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}

/// Forks and runs `child` in the copy; it must end the process (it never
/// returns, and a panic in it ends the child with exit code 1). The child
/// asks for SIGKILL when the calling thread exits. Returns the child's pid.
///
/// The child has only the calling thread. Locks that other threads held at
/// the fork stay held in it, so the child must not take locks other
/// threads may hold: the runtime resets its own with the [`ForkedChild`]
/// proof (see `ForkMutex::reinit_in_child`); user locks are the hazard of
/// the `Fork` start method, which warns about it. A deadlock is possible,
/// memory unsafety is not: the copied locks are merely held, never torn.
pub(crate) fn fork_with(child: impl FnOnce(&ForkedChild) -> std::convert::Infallible) -> io::Result<u32> {
    let parent = std::process::id();
    // SAFETY: fork itself has no preconditions; what the child may do
    // afterwards is described above and enforced through `ForkedChild`.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid != 0 {
        return Ok(pid as u32);
    }
    if die_with_parent(parent).is_err() {
        exit_immediately(1);
    }
    let proof = ForkedChild(());
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(&proof)));
    exit_immediately(1)
}

/// Asks the kernel to send SIGKILL to this process when the thread that
/// forked it exits, then checks that this has not already happened.
///
/// Async-signal-safe: only `prctl` and `getppid`.
pub(crate) fn die_with_parent(expected_parent: u32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and changes nothing else.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) })?;
    // SAFETY: getppid cannot fail and has no side effects.
    if unsafe { libc::getppid() } as u32 != expected_parent {
        return Err(io::Error::other("the parent exited before the child started"));
    }
    Ok(())
}

/// Leaves the parent and the session: forks, ends the original process at
/// once (its parent reaps it), and makes the copy the leader of a new
/// session, with no controlling terminal, so that neither the death of the
/// parent nor a signal to the parent's process group or terminal reaches
/// it. Call it only while the process has a single thread.
pub(crate) fn detach() -> io::Result<()> {
    // SAFETY: the caller runs single-threaded, so the child is a complete
    // copy with no lock held by a vanished thread.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid != 0 {
        exit_immediately(0);
    }
    // SAFETY: setsid takes no arguments and changes only this process's
    // session and process group.
    cvt(unsafe { libc::setsid() })?;
    Ok(())
}

/// Sets the name the kernel shows for this thread (and, for the main
/// thread, the process: `/proc/self/comm`, `ps`, `top`), cut to 15 bytes.
pub(crate) fn set_comm(name: &OsStr) {
    let mut buf = [0u8; 16];
    let bytes = name.as_bytes();
    let len = bytes.len().min(15);
    buf[..len].copy_from_slice(&bytes[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // from `buf`, which is that.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr(), 0, 0, 0) };
}

/// Ends the process at once with `code`, running no destructors and no
/// `atexit` handlers. Async-signal-safe.
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// An `exec` call prepared in advance: the path, arguments and environment
/// as the C strings and null-terminated arrays `exec` takes.
#[derive(Debug)]
pub(crate) struct ExecImage {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same value,
// which are never mutated; moving the value between threads moves them too.
unsafe impl Send for ExecImage {}

impl ExecImage {
    /// Prepares `exec(path, argv, env)`.
    pub(crate) fn new<'a>(
        path: &OsStr,
        argv: impl IntoIterator<Item = &'a OsStr>,
        env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
    ) -> io::Result<Self> {
        fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
            CString::new(bytes).map_err(|_| io::Error::other("an argument contains a NUL byte"))
        }
        let argv: Vec<CString> =
            argv.into_iter().map(|a| cstring(a.as_bytes().to_vec())).collect::<io::Result<_>>()?;
        let envp: Vec<CString> = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(kv)
            })
            .collect::<io::Result<_>>()?;
        let terminated =
            |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        Ok(Self {
            path: cstring(path.as_bytes().to_vec())?,
            argv_ptrs: terminated(&argv),
            envp_ptrs: terminated(&envp),
            _argv: argv,
            _envp: envp,
        })
    }
}

/// Opens a pidfd for `pid`: readable once the process has ended, and a way
/// to signal exactly that process even after its pid is reused.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) })?;
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` to the process behind `pidfd`. Signalling a process that
/// has already ended is not an error.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo behaves like kill().
    let res = cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    });
    match res {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// Reaps `pid` if it has ended, returning its exit code in Python's
/// convention: the exit status, or `-N` if signal N killed it.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<i32>> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    let got = cvt_retry(|| unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) })?;
    Ok((got != 0).then(|| exitcode(status)))
}

/// Reaps `pid`, waiting for it to end.
pub(crate) fn reap(pid: u32) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    cvt_retry(|| unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) })?;
    Ok(exitcode(status))
}

fn exitcode(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) { -libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) }
}

/// Sets the disposition of `signal` to "ignore".
pub(crate) fn ignore_signal(signal: i32) {
    // SAFETY: SIG_IGN is a valid disposition for every catchable signal.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

/// Blocks `signals`: they stay pending until unblocked. Unlike ignoring
/// them, this loses nothing for a child forked meanwhile, whose own
/// pending signals arrive once it unblocks them.
pub(crate) fn block_signals(signals: &[i32]) {
    change_mask(libc::SIG_BLOCK, signals);
}

/// Unblocks `signals`, delivering any that are pending.
pub(crate) fn unblock_signals(signals: &[i32]) {
    change_mask(libc::SIG_UNBLOCK, signals);
}

fn change_mask(how: libc::c_int, signals: &[i32]) {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // sigprocmask changes only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// `SIGINT`, blocked by the fork server.
pub(crate) const SIGINT: i32 = libc::SIGINT;
/// `SIGHUP`, ignored by the tracker.
pub(crate) const SIGHUP: i32 = libc::SIGHUP;
/// `SIGPIPE`, ignored in children as Rust's `main` does.
pub(crate) const SIGPIPE: i32 = libc::SIGPIPE;

/// The name of signal `signal`, such as `SIGKILL`.
pub(crate) fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match NAMES.get(signal as usize) {
        Some(name) if signal > 0 => format!("signal {signal} ({name})"),
        _ => format!("signal {signal}"),
    }
}

/// Registers `f` to run when the process exits through `exit` (returning
/// from `main` included).
pub(crate) fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `f` is a plain function with no arguments, valid for the life
    // of the process.
    if unsafe { libc::atexit(f) } != 0 {
        return Err(io::Error::other("atexit failed"));
    }
    Ok(())
}

/// How many threads this process has.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// When process `pid` started, in clock ticks since boot: with the pid, it
/// names one process for good, where the pid alone may be reused.
pub(crate) fn start_time(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: fields are counted
    // from the last ')'. `starttime` is field 22; state is field 3.
    let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    after.split_whitespace().nth(19).and_then(|f| f.parse().ok()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat has no start time"))
    })
}
