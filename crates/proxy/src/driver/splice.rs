//! Zero-copy forwarding with `splice(2)`: socket → pipe → socket, so the bytes
//! never enter user space. Linux only; the caller falls back to a userspace
//! copy when this is not available.
//!
//! Pipes are pooled: a direction takes a pipe when data arrives and gives it
//! back once the pipe is empty again, so idle connections hold none.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};

/// Bytes moved by one `splice` call at most.
const CHUNK: usize = 1 << 20;
/// Pipes kept for reuse; more are closed when given back.
const POOL_MAX: usize = 1024;
/// Pipe capacity asked for: larger pipes move more per call.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// A non-blocking pipe: `read` end and `write` end.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    pub fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
        // nobody else; OwnedFd takes them over and closes them on drop.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A bigger pipe means fewer calls per megabyte; failure (limits in
        // /proc/sys/fs/pipe-max-size) only costs speed.
        // SAFETY: F_SETPIPE_SZ takes an int argument and the fd is open.
        let _ = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Ok(Self { read, write })
    }
}

/// Moves up to `len` bytes from `from` to `to` without blocking; one of them
/// must be a pipe. `Ok(0)` from a socket means end of stream.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: splice takes two open descriptors, null offsets (both are
    // streams, not files) and flags; it reads and writes no user memory.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Socket → pipe.
pub fn fill(socket: RawFd, pipe: &Pipe) -> io::Result<usize> {
    splice(socket, pipe.write.as_raw_fd(), CHUNK)
}

/// Pipe → socket, at most `len` bytes (what the pipe holds).
pub fn drain(pipe: &Pipe, socket: RawFd, len: usize) -> io::Result<usize> {
    splice(pipe.read.as_raw_fd(), socket, len)
}

/// Whether an error from the first splice means "not supported here".
pub fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Empty pipes for reuse.
#[derive(Debug, Default)]
pub struct PipePool(Mutex<Vec<Pipe>>);

impl PipePool {
    /// An empty pipe from the pool, or a new one.
    pub fn take(&self) -> io::Result<Pipe> {
        let reused = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        reused.map_or_else(Pipe::new, Ok)
    }

    /// Gives back a pipe; the caller guarantees it is empty.
    pub fn give(&self, pipe: Pipe) {
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_MAX {
            pool.push(pipe);
        }
    }
}
