//! Shared memory: memfd-backed segments mapped into every process that
//! holds their fd, and the process-shared robust mutexes that live in them.
//!
//! A segment has no name and no file in `/dev/shm`: it exists while some
//! process holds its fd or maps it, and vanishes with the last.

use std::ffi::CString;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant, SystemTime};

use bytemuck::Pod;

use super::cvt;

/// A shared segment, mapped read-write into this process.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory, valid for as long as the
// value lives whatever thread holds it; every access to its bytes goes
// through the methods below, under their rules.
unsafe impl Send for Mapping {}
// SAFETY: as above; the methods that give references into the segment
// require the segment's lock (`Locked`), or copy.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A new segment of `len` bytes, zeroed; `name` shows in
    /// `/proc/<pid>/maps` only.
    pub(crate) fn create(name: &str, len: usize) -> io::Result<Mapping> {
        let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `name` is a valid C string for the call.
        let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
        // SAFETY: memfd_create returned a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: plain syscall on an fd we own.
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
        Mapping::map(fd, len)
    }

    /// Maps a segment received from another process; its length is the
    /// size of its file.
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Mapping> {
        let len = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        Mapping::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty shared segment"));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of a file at least
        // that long; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave a null pointer"))?;
        Ok(Mapping { ptr, len, fd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The address of `count` `T`s at `offset`, checked to be inside the
    /// segment and aligned.
    fn at<T>(&self, offset: usize, count: usize) -> *mut T {
        let size = std::mem::size_of::<T>().checked_mul(count).expect("a size that fits in usize");
        assert!(offset.checked_add(size).is_some_and(|end| end <= self.len), "outside the shared segment");
        assert_eq!(offset % std::mem::align_of::<T>(), 0, "a misaligned offset in a shared segment");
        // SAFETY: `offset` is inside the mapping, as just checked.
        unsafe { self.ptr.as_ptr().add(offset).cast::<T>() }
    }

    /// Copies the `T` at `offset` out, without a lock: other processes may
    /// be writing it, so it is read with a volatile read and may be torn
    /// for types larger than a machine word, as in Python's `RawValue`.
    pub(crate) fn read<T: Pod>(&self, offset: usize) -> T {
        // SAFETY: `at` checked bounds and alignment; every bit pattern is a
        // valid `T` (Pod).
        unsafe { self.at::<T>(offset, 1).read_volatile() }
    }

    /// Writes `value` at `offset`, without a lock (see [`read`](Mapping::read)).
    pub(crate) fn write<T: Pod>(&self, offset: usize, value: T) {
        // SAFETY: `at` checked bounds and alignment; no reference to these
        // bytes lives outside a `Locked`, which raw writers do not use on
        // a locked segment.
        unsafe { self.at::<T>(offset, 1).write_volatile(value) }
    }

    /// Initializes a process-shared robust mutex at `offset` (before any
    /// other process can see the segment); `recursive` lets its owner lock
    /// it again.
    pub(crate) fn init_mutex(&self, offset: usize, recursive: bool) -> io::Result<()> {
        let mutex = self.at::<libc::pthread_mutex_t>(offset, 1);
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialized by pthread_mutexattr_init before
        // the setters use it and destroyed after; `mutex` is in bounds and
        // aligned, and no other process can use it yet.
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let attr = attr.as_mut_ptr();
            let kind = if recursive { libc::PTHREAD_MUTEX_RECURSIVE } else { libc::PTHREAD_MUTEX_ERRORCHECK };
            let result = check(libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED))
                .and_then(|()| check(libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST)))
                .and_then(|()| check(libc::pthread_mutexattr_settype(attr, kind)))
                .and_then(|()| check(libc::pthread_mutex_init(mutex, attr)));
            libc::pthread_mutexattr_destroy(attr);
            result
        }
    }

    /// Locks the mutex at `offset`, waiting until `deadline` at most
    /// (`None`: no limit; a deadline passed already: only tries).
    /// `Ok(None)` when the time ran out.
    pub(crate) fn lock(&self, offset: usize, deadline: Option<Instant>) -> io::Result<Option<Locked<'_>>> {
        let mutex = self.at::<libc::pthread_mutex_t>(offset, 1);
        let code = match deadline {
            // SAFETY: `mutex` was initialized by `init_mutex` in this
            // segment, by whoever created it.
            None => unsafe { libc::pthread_mutex_lock(mutex) },
            Some(d) if d <= Instant::now() => {
                // SAFETY: as above.
                unsafe { libc::pthread_mutex_trylock(mutex) }
            }
            Some(d) => {
                // pthread_mutex_timedlock waits until a CLOCK_REALTIME time.
                let left = d.saturating_duration_since(Instant::now());
                let wall =
                    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO) + left;
                let ts = libc::timespec {
                    tv_sec: wall.as_secs() as libc::time_t,
                    tv_nsec: wall.subsec_nanos() as libc::c_long,
                };
                // SAFETY: as above; `ts` is a valid timespec.
                unsafe { libc::pthread_mutex_timedlock(mutex, &ts) }
            }
        };
        match code {
            0 => Ok(Some(Locked { map: self, mutex: offset, owner_died: false, _thread_bound: PhantomData })),
            libc::EOWNERDEAD => {
                // The owner died holding it: it is ours now, once marked
                // consistent again.
                // SAFETY: we hold the mutex (EOWNERDEAD hands it over).
                check(unsafe { libc::pthread_mutex_consistent(mutex) })?;
                Ok(Some(Locked { map: self, mutex: offset, owner_died: true, _thread_bound: PhantomData }))
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            // This thread holds it: with a deadline, it simply does not
            // come in time.
            libc::EDEADLK if deadline.is_some() => Ok(None),
            libc::EDEADLK => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "this thread holds the lock already: locking it again would wait forever",
            )),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl Mapping {
    /// Copies `buf.len()` bytes at `offset` into `buf`.
    ///
    /// Without a lock: bytes another process writes meanwhile may be seen
    /// in part, but every bit pattern is a valid byte.
    pub(crate) fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        let src = self.at::<u8>(offset, buf.len());
        // SAFETY: `at` checked that the range is inside the mapping; `buf`
        // is a distinct, private buffer.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `data` to `offset` (see [`copy_out`](Mapping::copy_out)).
    pub(crate) fn copy_in(&self, offset: usize, data: &[u8]) {
        let dst = self.at::<u8>(offset, data.len());
        // SAFETY: as for `copy_out`; bytes have no invalid values, so a
        // reader racing with this copy sees bytes, never an invalid value.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
    }
}

/// Gives the unnamed file `file` (opened with `O_TMPFILE`) the name `path`,
/// in one step: no process can see the name before the file is complete.
/// Fails with `AlreadyExists` if the name is taken.
pub(crate) fn publish(file: BorrowedFd<'_>, path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL in a number");
    let target = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: both are valid C strings for the call; linkat only adds a
    // name for the file the magic link refers to.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// The direct views of a named block: they are here because a view of
/// memory other processes write cannot be made safe by the runtime alone.
impl crate::shm::SharedMemory {
    /// The whole block as a byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no process (this one included, through any
    /// handle) may write the block: Rust assumes the bytes behind a `&[u8]`
    /// do not change. Hold a lock that every writer takes, or use
    /// [`read_at`](crate::SharedMemory::read_at), which copies.
    pub unsafe fn as_slice(&self) -> &[u8] {
        let map = self.mapping();
        // SAFETY: the range is the whole mapping, valid while `self` lives;
        // the caller promises that nothing writes it meanwhile.
        unsafe { std::slice::from_raw_parts(map.at::<u8>(0, map.len()), map.len()) }
    }

    /// The whole block as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no other process may read or write the block,
    /// and no other handle in this process may be used to: Rust assumes a
    /// `&mut [u8]` is the only access to its bytes. Hold a lock that every
    /// user takes, or use [`write_at`](crate::SharedMemory::write_at), which
    /// copies.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let map = self.mapping();
        // SAFETY: as for `as_slice`, with the caller promising exclusive
        // access.
        unsafe { std::slice::from_raw_parts_mut(map.at::<u8>(0, map.len()), map.len()) }
    }
}

impl Mapping {
    /// The `u64` at `offset` as an atomic shared with every process that
    /// maps the segment.
    pub(crate) fn atomic64(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as for `atomic`: `at` checked bounds and alignment
        // (AtomicU64 has the size and alignment of u64 on the targets
        // with 64-bit atomics, which this crate requires).
        unsafe { AtomicU64::from_ptr(self.at::<u64>(offset, 1)) }
    }

    /// The `u32` at `offset` as an atomic shared with every process that
    /// maps the segment.
    pub(crate) fn atomic(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `at` checked bounds and alignment (AtomicU32 has the
        // size and alignment of u32); the bytes live as long as `self`,
        // and every access to them is atomic, from any process.
        unsafe { AtomicU32::from_ptr(self.at::<u32>(offset, 1)) }
    }

    /// Sleeps while the `u32` at `offset` is `expected`, until woken by
    /// [`wake`](Mapping::wake) or `deadline` (`None`: no limit). False if
    /// the time ran out; true otherwise (woken, the value changed, or a
    /// signal came: callers look again).
    pub(crate) fn wait(&self, offset: usize, expected: u32, deadline: Option<Instant>) -> io::Result<bool> {
        let word = self.at::<u32>(offset, 1);
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero());
                let Some(left) = left else { return Ok(false) };
                Some(libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
        };
        let ts = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is an aligned u32 inside the mapping; FUTEX_WAIT
        // (shared, not private: other processes wake it) only reads it.
        let r = unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAIT, expected, ts) };
        if r == 0 {
            return Ok(true);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(true),
            Some(libc::ETIMEDOUT) => Ok(false),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Wakes up to `count` processes sleeping in [`wait`](Mapping::wait) on
    /// the `u32` at `offset`.
    pub(crate) fn wake(&self, offset: usize, count: u32) {
        let word = self.at::<u32>(offset, 1);
        let count = libc::c_int::try_from(count).unwrap_or(libc::c_int::MAX);
        // SAFETY: as for `wait`; FUTEX_WAKE does not touch the word.
        unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, count) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this address and
        // length, and no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A held robust mutex of a segment; unlocks when dropped. While it lives,
/// the bytes the mutex guards may be borrowed.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    map: &'a Mapping,
    mutex: usize,
    owner_died: bool,
    /// A pthread mutex is unlocked by the thread that locked it: not Send.
    _thread_bound: PhantomData<*const ()>,
}

impl Locked<'_> {
    /// True if the previous owner died holding the lock (what it guarded
    /// may be half-updated).
    pub(crate) fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// The `len` `T`s at `offset`, which this mutex guards.
    pub(crate) fn slice<T: Pod>(&self, offset: usize, len: usize) -> &[T] {
        // SAFETY: bounds and alignment are checked by `at`; every process
        // takes this mutex before touching these bytes (the layer above
        // keeps raw and locked segments apart), and we hold it for `&self`.
        unsafe { std::slice::from_raw_parts(self.map.at::<T>(offset, len), len) }
    }

    /// The `len` `T`s at `offset`, mutably.
    pub(crate) fn slice_mut<T: Pod>(&mut self, offset: usize, len: usize) -> &mut [T] {
        // SAFETY: as for `slice`, and `&mut self` makes this the only
        // borrow in this process.
        unsafe { std::slice::from_raw_parts_mut(self.map.at::<T>(offset, len), len) }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mutex = self.map.at::<libc::pthread_mutex_t>(self.mutex, 1);
        // SAFETY: this thread holds the mutex.
        unsafe { libc::pthread_mutex_unlock(mutex) };
    }
}

/// pthread functions return the error number instead of setting errno.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(code)) }
}
