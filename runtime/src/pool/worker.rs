//! The pool's worker: a child process that runs chunks of calls until its
//! channel closes (or it has run its share, with `maxtasksperchild`).
//!
//! The protocol, one frame each way per task: the parent sends a
//! [`TaskHeader`] followed by an encoded `Vec` of argument tuples (with the
//! fds of any handles among them); the worker answers with a [`Reply`],
//! followed, for [`Reply::Done`], by an encoded `Vec<ItemResult<R>>`.
//! Tasks are answered in the order they came.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Encoded};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::registry::{self, Input, Panicked, Registration};

/// The name the worker's loop is registered under.
pub(crate) const WORKER: &str = "multiproc::pool::worker";

/// What a worker is started with, beside its channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// The initializer's registered name and encoded arguments.
    pub(crate) initializer: Option<(String, Encoded)>,
    /// How many tasks to run before exiting (`maxtasksperchild`).
    pub(crate) max_tasks: Option<u64>,
}

/// The header of a task: which fn to call on the chunk that follows.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskHeader<'a> {
    pub(crate) id: u64,
    pub(crate) target: &'a str,
}

/// The header of a worker's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// Task `id` ran; its results follow.
    Done { id: u64 },
    /// Task `id` could not run: an unknown fn, or arguments or results
    /// that did not decode or encode.
    Failed { id: u64, error: String },
    /// The initializer panicked; the worker exits.
    InitFailed(Panicked),
}

inventory::submit! {
    Registration { name: WORKER, file: file!(), line: line!(), invoke: run }
}

/// The trampoline of the worker: decodes its channel and configuration and
/// serves until the channel closes.
fn run(input: Input) -> Result<Encoded> {
    let Input::One(args) = input else {
        return Err(Error::Codec("the pool worker is not a fn for chunks".to_owned()));
    };
    let (conn, config): (Connection<()>, WorkerConfig) = codec::decode(args)?;
    serve(&conn, config);
    codec::encode(&())
}

fn serve(conn: &Connection<()>, config: WorkerConfig) {
    if let Some((name, args)) = config.initializer
        && let Err(panicked) = registry::run_initializer(&name, args)
    {
        if let Ok(bytes) = codec::encode_with_body(&Reply::InitFailed(panicked), &[]) {
            let _ = conn.channel.send(&bytes, &[]);
        }
        return;
    }
    let mut done = 0u64;
    // Each reply goes out as soon as its task is done: one held back to go
    // out with the next would be lost if the next task killed the worker.
    while config.max_tasks.is_none_or(|max| done < max) {
        let Ok(Encoded { bytes, fds }) = conn.channel.recv(None) else {
            return; // the pool closed the channel: time to go
        };
        let Ok((header, chunk)) = codec::decode_prefix::<TaskHeader<'_>>(&bytes) else {
            return; // not the pool talking
        };
        let (id, offset, target) = (header.id, bytes.len() - chunk.len(), registry::lookup(header.target));
        let chunk = Encoded { bytes, fds };
        let ran = target.and_then(|reg| (reg.invoke)(Input::Chunk(chunk, offset)));
        done += 1;
        let sent = match ran {
            Ok(results) => codec::encode_with_body(&Reply::Done { id }, &results.bytes).and_then(|bytes| {
                let fds: Vec<_> = results.fds.iter().map(std::os::fd::AsFd::as_fd).collect();
                conn.channel.send(&bytes, &fds)
            }),
            Err(e) => codec::encode_with_body(&Reply::Failed { id, error: e.to_string() }, &[])
                .and_then(|bytes| conn.channel.send(&bytes, &[])),
        };
        if sent.is_err() {
            return;
        }
    }
}
