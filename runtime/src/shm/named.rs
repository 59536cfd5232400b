//! [`SharedMemory`]: a block of shared memory with a name, which programs
//! that share no parent can open.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{RecvFd, SendFd};
use crate::error::{Error, Result};
use crate::start::tracker;
use crate::sys::fd::FileLock;
use crate::sys::shm::Mapping;

/// Where POSIX shared memory names live on Linux (`shm_open` opens files
/// here).
const DIR: &str = "/dev/shm";

/// The longest name a file can have.
const NAME_MAX: usize = 255;

/// A block of shared memory with a name: Python's
/// `multiprocessing.shared_memory.SharedMemory`.
///
/// One program [`create`](SharedMemory::create)s a block; any program of
/// the same user that knows the name can [`open`](SharedMemory::open) it,
/// whether or not they share a parent. The names are those of `shm_open`
/// (files in `/dev/shm`), so Python's `SharedMemory(name=...)` opens the
/// same blocks.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// let block = multiproc::SharedMemory::create_unique(4096)?;
/// block.write_at(0, b"hello");
///
/// // Elsewhere, knowing only the name:
/// let other = multiproc::SharedMemory::open(block.name())?;
/// let mut buf = [0u8; 5];
/// other.read_at(0, &mut buf);
/// assert_eq!(&buf, b"hello");
/// # block.unlink()?;
/// # Ok(())
/// # }
/// ```
///
/// # Lifetime of the name
///
/// A block is memory for as long as some process has it open or mapped,
/// as with any file. Its *name* is removed:
/// - by [`unlink`](SharedMemory::unlink), at once (processes that have the
///   block keep using it);
/// - otherwise, by the runtime, once no process has the block open any
///   more and a process that created or opened it has ended, however it
///   ended (SIGKILL included): each such process has a small tracker
///   process that waits for that moment, so nothing is left in `/dev/shm`
///   and nothing warns about leaks;
/// - never, after [`keep`](SharedMemory::keep): then only `unlink` (or
///   `rm /dev/shm/<name>`) removes it.
///
/// A process that only received a handle (as an argument of a remote fn,
/// through a pipe or a queue) holds the block as the sender does: the name
/// stays while it lives.
///
/// # Access
///
/// [`read_at`](SharedMemory::read_at) and
/// [`write_at`](SharedMemory::write_at) copy bytes in and out and are safe:
/// other processes may write at the same time, in which case a read may see
/// part of a write. [`as_slice`](SharedMemory::as_slice) and
/// [`as_mut_slice`](SharedMemory::as_mut_slice) give the memory itself, and
/// are `unsafe`: the runtime cannot know what other programs do with it.
/// Guard it with a [`Lock`](crate::Lock) passed along, or with a protocol
/// of your own.
pub struct SharedMemory {
    inner: Arc<Block>,
}

struct Block {
    map: Mapping,
    name: String,
}

impl SharedMemory {
    /// Creates a block of `size` bytes, zeroed, named `name` (a leading `/`,
    /// as Python writes it, is allowed and dropped).
    ///
    /// The block appears under its name complete, with its full size: a
    /// program opening the name at the same moment either finds nothing or
    /// the whole block.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `AlreadyExists` if a block has this name,
    /// `InvalidInput` for a `size` of 0 or a name that is empty, longer than
    /// 255 bytes, or contains `/` or NUL; or the system's error.
    pub fn create(name: &str, size: usize) -> Result<Self> {
        let name = check_name(name)?;
        if size == 0 {
            return Err(Error::invalid_input("a shared memory block of 0 bytes"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(DIR)
            .map_err(|e| with_context(e, "cannot create shared memory in", DIR))?;
        file.set_len(
            u64::try_from(size).map_err(|_| Error::invalid_input("a block larger than a file can be"))?,
        )?;
        crate::sys::fd::flock(file.as_fd(), FileLock::Shared)?;
        let path = path_of(name);
        crate::sys::shm::publish(file.as_fd(), &path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("a shared memory block named {name:?} exists already"),
                ))
            } else {
                Error::Io(e)
            }
        })?;
        SharedMemory::tracked(name, file, &path)
    }

    /// Creates a block of `size` bytes with a fresh random name, as Python's
    /// `SharedMemory(create=True, size=size)` does.
    ///
    /// # Errors
    ///
    /// As for [`create`](SharedMemory::create).
    pub fn create_unique(size: usize) -> Result<Self> {
        loop {
            let name = format!("mp-{:016x}", crate::sys::random::random_u64()?);
            match SharedMemory::create(&name, size) {
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => return other,
            }
        }
    }

    /// Opens the block named `name`, created by this program or another.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` if no block has this name (or it was
    /// removed while being opened), `InvalidInput` for a malformed name, or
    /// the system's error (`PermissionDenied` for another user's block).
    pub fn open(name: &str) -> Result<Self> {
        let name = check_name(name)?;
        let path = path_of(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| with_context(e, "no shared memory block", &path.to_string_lossy()))?;
        // A tracker that is removing this name holds the exclusive lock:
        // this waits for it to finish, then sees that the name is gone.
        crate::sys::fd::flock(file.as_fd(), FileLock::Shared)?;
        let ours = file.metadata()?;
        match std::fs::symlink_metadata(&path) {
            Ok(named) if (named.dev(), named.ino()) == (ours.dev(), ours.ino()) => {}
            _ => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the shared memory block {name:?} was removed while being opened"),
                )));
            }
        }
        SharedMemory::tracked(name, file, &path)
    }

    fn tracked(name: &str, file: File, path: &std::path::Path) -> Result<Self> {
        let fd = OwnedFd::from(file);
        tracker::track(path, fd.as_fd())?;
        let map = Mapping::open(fd)?;
        Ok(SharedMemory { inner: Arc::new(Block { map, name: name.to_owned() }) })
    }

    /// The block's name, without a leading `/`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The block's size in bytes.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// False: a block has at least one byte. (Present for the `len` lint's
    /// sake and for symmetry with slices.)
    pub fn is_empty(&self) -> bool {
        self.inner.map.len() == 0
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    ///
    /// # Panics
    ///
    /// If the range is outside the block, as slice indexing does.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) {
        self.check_range(offset, buf.len());
        self.inner.map.copy_out(offset, buf);
    }

    /// Copies `data` into the block at `offset`.
    ///
    /// # Panics
    ///
    /// If the range is outside the block, as slice indexing does.
    pub fn write_at(&self, offset: usize, data: &[u8]) {
        self.check_range(offset, data.len());
        self.inner.map.copy_in(offset, data);
    }

    /// A copy of the whole block.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.len()];
        self.read_at(0, &mut bytes);
        bytes
    }

    fn check_range(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|end| end <= self.len()),
            "range {offset}..{offset}+{len} out of bounds for a shared memory block of {} bytes",
            self.len()
        );
    }

    /// Removes the block's name now, as Python's `unlink()` does. Processes
    /// that have the block keep it; no process can open it by name any more.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` if the name is gone already, or names
    /// another block now.
    pub fn unlink(&self) -> Result<()> {
        let path = path_of(&self.inner.name);
        let ours = File::from(self.inner.map.fd().try_clone_to_owned()?).metadata()?;
        let gone = || {
            Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the shared memory block {:?} has no name any more", self.inner.name),
            ))
        };
        match std::fs::symlink_metadata(&path) {
            Ok(named) if (named.dev(), named.ino()) == (ours.dev(), ours.ino()) => {}
            _ => return Err(gone()),
        }
        std::fs::remove_file(&path)
            .map_err(|e| if e.kind() == io::ErrorKind::NotFound { gone() } else { e.into() })?;
        tracker::forget(self.inner.map.fd())?;
        Ok(())
    }

    /// Keeps the block's name after every process that knows it has ended:
    /// no tracker removes it, this process's or another's. Python 3.13's
    /// `track=False`, for the whole block rather than one process.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the block's mode cannot be changed (it is another
    /// user's).
    pub fn keep(&self) -> Result<()> {
        let file = File::from(self.inner.map.fd().try_clone_to_owned()?);
        let mode = file.metadata()?.mode();
        file.set_permissions(std::fs::Permissions::from_mode(mode | tracker::KEEP_BIT))?;
        tracker::forget(self.inner.map.fd())?;
        Ok(())
    }

    /// The first byte of the block. The pointer is valid while a handle to
    /// the block lives in this process.
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.map.as_ptr()
    }

    pub(crate) fn mapping(&self) -> &Mapping {
        &self.inner.map
    }
}

fn check_name(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let why = if bare.is_empty() {
        "is empty"
    } else if bare.len() > NAME_MAX {
        "is longer than 255 bytes"
    } else if bare.contains('/') || bare.contains('\0') {
        "contains `/` or a NUL byte"
    } else if bare == "." || bare == ".." {
        "is `.` or `..`"
    } else {
        return Ok(bare);
    };
    Err(Error::invalid_input(format!("the shared memory name {name:?} {why}")))
}

fn path_of(name: &str) -> PathBuf {
    PathBuf::from(DIR).join(name)
}

fn with_context(e: io::Error, what: &str, path: &str) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{what} {path}: {e}")))
}

impl Clone for SharedMemory {
    /// Another handle to the same block (the same mapping).
    fn clone(&self) -> Self {
        SharedMemory { inner: self.inner.clone() }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("name", &self.inner.name).field("len", &self.len()).finish()
    }
}

/// A handle travels as its name and its open file: the receiver holds the
/// block as the sender does, and needs no tracker of its own.
impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.inner.name, SendFd(self.inner.map.fd())).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (name, RecvFd(fd)): (String, RecvFd) = Deserialize::deserialize(deserializer)?;
        let map = Mapping::open(fd).map_err(crate::codec::de_error)?;
        Ok(SharedMemory { inner: Arc::new(Block { map, name }) })
    }
}
