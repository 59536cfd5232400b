//! The messages of the child protocol.

use serde::{Deserialize, Serialize};

use super::StartMethod;

/// Everything a child needs to run its target, sent by the parent as the
/// first frame on the child's channel. The fds of the handles inside the
/// arguments ride on the same frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChildSpec {
    /// Must match the token the child was given at start, where it was
    /// given one (spawn): a forged environment never runs anything.
    pub(crate) token: u64,
    /// The registered name of the remote fn.
    pub(crate) target: String,
    /// The fn's encoded arguments.
    pub(crate) args: Vec<u8>,
    /// The child's process name.
    pub(crate) name: String,
    /// The child's place in the process tree: `[4, 1]` for the first child
    /// of `Process-4`. Default names are built from it.
    pub(crate) path: Vec<u32>,
    pub(crate) parent_name: String,
    pub(crate) parent_pid: u32,
    pub(crate) daemon: bool,
    pub(crate) start_method: StartMethod,
    /// `log::LevelFilter` as a number.
    pub(crate) log_level: u8,
    /// Whether the parent prints its log records on stderr with
    /// `log_to_stderr`, so that the child does too.
    pub(crate) log_to_stderr: bool,
}

/// How the target ended, sent by the child as the one frame it writes. The
/// fds of handles in a returned value ride on the same frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The target returned this encoded value.
    Returned(Vec<u8>),
    /// The target panicked.
    Panicked { message: String, location: Option<String> },
    /// The child has no fn registered under the target's name.
    UnknownFunction(String),
    /// The arguments did not decode, or the result did not encode.
    Codec(String),
}

/// Sent by the parent to the fork server: fork a child. The frame carries
/// two fds: the child's channel and the socket the server reports on.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ForkRequest;

/// Sent by the fork server about one child, on that child's status socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ServerReport {
    /// The child exists; the frame carries its pidfd.
    Started { pid: u32 },
    /// The child ended with this exit code (Python's convention).
    Exited { exitcode: i32 },
    /// The server could not start the child.
    Failed { error: String },
}

/// The first frame on a fork server's control socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerHello {
    pub(crate) token: u64,
}
