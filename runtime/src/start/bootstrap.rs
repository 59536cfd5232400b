//! The child bootstrap: a constructor that runs before `main` (before the
//! test harness too) and catches a process started as a child or as a fork
//! server, so that user code in `main` never runs twice and nothing needs
//! an `init()` call.
//!
//! In an ordinary process the constructor costs one `getenv`.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::codec::{self, Encoded, FrameReader};
use crate::registry::{self, Input, Panicked};
use crate::sys;
use crate::sys::process::ExecImage;

use super::spec::{ChildSpec, Outcome};
use super::{StartMethod, forkserver, identity, tracker};

/// The environment variable that marks a re-executed child. Its value is
/// `1:<role>:<fd>:<token>:<parent pid>`: protocol version, `spawn` or
/// `forkserver`, the inherited socket, the parent's token in hex, and the
/// pid of the parent.
///
/// A `static` rather than a `const` on purpose: the code that starts
/// children refers to it, which keeps this file's object, and so the
/// constructor, in every binary that can start a child.
pub(crate) static CHILD_ENV: &str = "MULTIPROC_CHILD";

const PROTOCOL: &str = "1";

/// How long a child waits for its spec before deciding it was not started
/// by multiproc.
const SPEC_TIMEOUT: Duration = Duration::from_secs(30);

/// What a re-executed process is to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Spawned,
    ForkServer,
    Tracker,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Spawned => "spawn",
            Role::ForkServer => "forkserver",
            Role::Tracker => "tracker",
        }
    }
}

sys::ctor::constructor! {
    /// Catches a child before `main`.
    static BOOTSTRAP = on_load;
}

fn on_load(startup: &sys::ctor::Startup) {
    let Some(value) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    sys::env::remove_var_single_threaded(CHILD_ENV);
    let (role, fd, token, parent) = parse(&value).unwrap_or_else(|msg| refuse(&msg));
    if role == Role::Tracker {
        // The tracker outlives its parent on purpose, and runs no user code.
        let channel = sys::fd::adopt_inherited_socket(fd)
            .unwrap_or_else(|e| refuse(&format!("{CHILD_ENV} names fd {fd}, which is unusable: {e}")));
        tracker::serve(channel);
    }
    // First thing: die with the parent, and make sure it is still there.
    if let Err(e) = sys::process::die_with_parent(parent) {
        refuse(&format!("the parent (pid {parent}) is gone: {e}"));
    }
    show_program_name();
    // The child's target must be registered before it is looked up.
    startup.run_later_constructors();
    let channel = sys::fd::adopt_inherited_socket(fd)
        .unwrap_or_else(|e| refuse(&format!("{CHILD_ENV} names fd {fd}, which is unusable: {e}")));
    match role {
        Role::Spawned => run_child(channel, Some(token), StartMethod::Spawn),
        Role::ForkServer => forkserver::serve(channel, token),
        Role::Tracker => unreachable!("the tracker is served above"),
    }
}

fn parse(value: &OsStr) -> Result<(Role, RawFd, u64, u32), String> {
    let garbled = || format!("{CHILD_ENV}={value:?} is not a value multiproc sets");
    let value = value.to_str().ok_or_else(garbled)?;
    let mut parts = value.split(':');
    let (Some(PROTOCOL), Some(role), Some(fd), Some(token), Some(parent), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(garbled());
    };
    let role = match role {
        "spawn" => Role::Spawned,
        "forkserver" => Role::ForkServer,
        "tracker" => Role::Tracker,
        _ => return Err(garbled()),
    };
    let fd = fd.parse().map_err(|_| garbled())?;
    let token = u64::from_str_radix(token, 16).map_err(|_| garbled())?;
    let parent = parent.parse().map_err(|_| garbled())?;
    Ok((role, fd, token, parent))
}

/// Names the process after the program: executed as /proc/self/exe it
/// would show as "exe", and forked by the launcher thread, as that thread.
fn show_program_name() {
    if let Some(program) = std::env::args_os().next() {
        let program = std::path::Path::new(&program);
        sys::process::set_comm(program.file_name().unwrap_or(program.as_os_str()));
    }
}

/// Ends a process that was not properly started as a child: one line on
/// stderr, exit code 2, and never a run of the user's `main`.
pub(crate) fn refuse(why: &str) -> ! {
    let _ = writeln!(io::stderr(), "multiproc: refusing to run as a child process: {why}");
    sys::process::exit_immediately(2)
}

/// The `exec` that starts a re-executed child in `role`, which inherits its
/// socket as `INHERITED_FD` (see `sys::process::spawn_exec`).
pub(crate) fn child_image(role: Role) -> io::Result<ExecImage> {
    let value = format!(
        "{PROTOCOL}:{}:{}:{:x}:{}",
        role.as_str(),
        sys::process::INHERITED_FD,
        identity::token()?,
        std::process::id()
    );
    let argv0 = std::env::args_os().next().unwrap_or_else(|| OsString::from("multiproc"));
    let label = OsString::from(format!("multiproc:{}", role.as_str()));
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().filter(|(k, _)| k != CHILD_ENV).collect();
    let env = vars
        .iter()
        .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
        .chain(std::iter::once((OsStr::new(CHILD_ENV), OsStr::new(&value))));
    ExecImage::new(OsStr::new("/proc/self/exe"), [argv0.as_os_str(), label.as_os_str()], env)
}

/// Runs the child protocol on `channel` and exits: reads the spec, becomes
/// the process it describes, runs the target, sends the outcome.
pub(crate) fn run_child(channel: OwnedFd, expected_token: Option<u64>, method: StartMethod) -> ! {
    // Rust's `main` ignores SIGPIPE; a child caught before `main` does too.
    sys::process::ignore_signal(sys::process::SIGPIPE);
    if method == StartMethod::Fork {
        show_program_name();
    }
    let mut reader = FrameReader::new(usize::MAX);
    let frame = match reader.read_before(channel.as_fd(), Instant::now() + SPEC_TIMEOUT) {
        Ok(Some(frame)) => frame,
        Ok(None) => refuse("the parent closed the channel before sending any work"),
        Err(e) => refuse(&format!("no work arrived from the parent: {e}")),
    };
    let Encoded { bytes, fds } = frame;
    let spec: ChildSpec = match codec::decode(Encoded::from_bytes(bytes)) {
        Ok(spec) => spec,
        Err(e) => refuse(&format!("the parent's message is not a child spec: {e}")),
    };
    if expected_token.is_some_and(|t| t != spec.token) {
        refuse("the parent's message does not carry the parent's token");
    }
    identity::become_child(&spec);
    debug_assert_eq!(method, spec.start_method);
    super::set_start_method(spec.start_method);
    if spec.log_to_stderr {
        super::logging::install();
    }
    log::set_max_level(level_filter(spec.log_level));
    let (outcome, fds) = run_target(&spec, Encoded { bytes: spec.args.clone(), fds });
    let code = if matches!(outcome, Outcome::Returned(_)) { 0 } else { 1 };
    if let Ok(frame) = codec::encode(&outcome) {
        let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        // A parent that stopped listening does not change how we exit.
        let _ = codec::write_frame(channel.as_fd(), &frame.bytes, &fds);
    }
    drop(channel);
    // `exit`, not `_exit`: it flushes Rust's stdout (with a `try_lock`, so a
    // `Fork` child whose copy of the lock was held by another thread does
    // not hang) and runs `atexit` handlers, among them the one that joins
    // this child's own children. The parent's `join` returns after that.
    std::process::exit(code)
}

fn run_target(spec: &ChildSpec, args: Encoded) -> (Outcome, Vec<OwnedFd>) {
    let registration = match registry::lookup(&spec.target) {
        Ok(r) => r,
        Err(crate::Error::UnknownFunction(name)) => return (Outcome::UnknownFunction(name), Vec::new()),
        Err(e) => return (Outcome::Codec(e.to_string()), Vec::new()),
    };
    registry::record_panic_locations();
    match registry::catch_panic(|| (registration.invoke)(Input::One(args))) {
        Ok(Ok(encoded)) => (Outcome::Returned(encoded.bytes), encoded.fds),
        Ok(Err(e)) => (Outcome::Codec(e.to_string()), Vec::new()),
        Err(Panicked { message, location }) => (Outcome::Panicked { message, location }, Vec::new()),
    }
}

/// `log::LevelFilter` from its number, as `ChildSpec` carries it.
pub(crate) fn level_filter(level: u8) -> log::LevelFilter {
    log::LevelFilter::iter().nth(level as usize).unwrap_or(log::LevelFilter::Off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_values_parse() {
        assert_eq!(parse(OsStr::new("1:spawn:7:ff:42")), Ok((Role::Spawned, 7, 255, 42)));
        assert_eq!(parse(OsStr::new("1:forkserver:12:1:9")), Ok((Role::ForkServer, 12, 1, 9)));
    }

    #[test]
    fn garbled_values_are_refused() {
        for bad in [
            "",
            "1",
            "1:spawn:7",
            "2:spawn:7:ff",
            "1:exec:7:ff",
            "1:spawn:x:ff",
            "1:spawn:7:zz",
            "1:spawn:7:ff:extra",
        ] {
            assert!(parse(OsStr::new(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn level_numbers_round_trip() {
        for level in log::LevelFilter::iter() {
            assert_eq!(level_filter(level as u8), level);
        }
    }
}
