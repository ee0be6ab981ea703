//! Moving bytes both ways once a connection is routed: `splice(2)` through a
//! pooled pipe on Linux, a pooled userspace buffer elsewhere or when splice
//! is refused. End of stream on one side half-closes the other (`shutdown`
//! of its write side), and the other direction goes on.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use sixgate_telemetry::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Shared;

/// Size of a userspace copy buffer.
pub const BUF: usize = 64 * 1024;
/// Buffers kept for reuse.
const POOL_MAX: usize = 256;

/// Reusable userspace buffers.
#[derive(Debug, Default)]
pub struct BufPool(Mutex<Vec<Vec<u8>>>);

impl BufPool {
    /// A buffer of at least `BUF` bytes (its contents are whatever was there).
    pub fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        reused.unwrap_or_else(|| vec![0; BUF])
    }

    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.len() < BUF {
            buf.resize(BUF, 0);
        }
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

/// What one direction reports as it goes.
pub struct Progress<'a> {
    /// The route's byte counter for this direction.
    pub counter: &'a Counter,
    /// Bytes moved this way on this connection.
    pub moved: &'a AtomicU64,
    /// Milliseconds since `start` when a byte last moved (either way).
    pub activity: &'a AtomicU64,
    /// Set by the first direction to reach end of stream. Only that one
    /// half-closes its destination: when the second ends, both sockets are
    /// closed anyway (which sends the FIN), so its shutdown would be a
    /// wasted system call.
    pub one_done: &'a AtomicBool,
    pub start: Instant,
}

impl Progress<'_> {
    fn note(&self, n: usize) {
        let n = n as u64;
        self.counter.add(n);
        self.moved.fetch_add(n, Ordering::Relaxed);
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

/// Bytes a direction moves with plain reads and writes before it turns to
/// `splice(2)`. Short exchanges (a request, a small response) cost fewer
/// system calls and no pipe that way; bulk transfers get splice.
const SPLICE_AFTER: u64 = 64 * 1024;

/// How a copy loop stopped without an error.
enum Stop {
    /// End of stream (the destination is half-closed).
    Eof,
    /// Enough bytes moved to switch to splice.
    Switch,
}

/// Copies `src` → `dst` until end of stream, then half-closes `dst`.
pub async fn one_way(
    shared: &Shared,
    src: &TcpStream,
    dst: &TcpStream,
    progress: Progress<'_>,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if shared.use_splice {
        let switch_at = progress.moved.load(Ordering::Relaxed) + SPLICE_AFTER;
        if let Stop::Eof = userspace_loop(shared, src, dst, &progress, Some(switch_at)).await? {
            return Ok(());
        }
        let before = progress.moved.load(Ordering::Relaxed);
        match splice_loop(shared, src, dst, &progress).await {
            Err(err)
                if super::splice::unsupported(&err)
                    && progress.moved.load(Ordering::Relaxed) == before =>
            {
                shared.metrics.splice_fallbacks.inc();
            }
            other => return other,
        }
    }
    userspace_loop(shared, src, dst, &progress, None)
        .await
        .map(|_| ())
}

fn half_close(dst: &TcpStream, progress: &Progress<'_>) {
    if !progress.one_done.swap(true, Ordering::Relaxed) {
        // The peer may be gone already; that ends the other direction too.
        let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
    }
}

#[cfg(target_os = "linux")]
async fn splice_loop(
    shared: &Shared,
    src: &TcpStream,
    dst: &TcpStream,
    progress: &Progress<'_>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;

    use super::splice;

    let (src_fd, dst_fd) = (src.as_raw_fd(), dst.as_raw_fd());
    loop {
        src.readable().await?;
        // Hold one (empty) pipe while bytes keep coming; give it back when
        // the source runs dry. On an error the pipe is dropped, data and all.
        let pipe = shared.pipes.take()?;
        loop {
            let filled = match src.try_io(Interest::READABLE, || splice::fill(src_fd, &pipe)) {
                Ok(0) => {
                    shared.pipes.give(pipe);
                    half_close(dst, progress);
                    return Ok(());
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    shared.pipes.give(pipe);
                    break;
                }
                Err(err) => return Err(err),
            };
            let mut left = filled;
            while left > 0 {
                dst.writable().await?;
                match dst.try_io(Interest::WRITABLE, || splice::drain(&pipe, dst_fd, left)) {
                    Ok(n) => {
                        left -= n;
                        progress.note(n);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
}

/// Copies with a pooled buffer; with `switch_at`, stops (at a chunk
/// boundary, nothing held) once this direction has moved that many bytes.
async fn userspace_loop(
    shared: &Shared,
    src: &TcpStream,
    dst: &TcpStream,
    progress: &Progress<'_>,
    switch_at: Option<u64>,
) -> io::Result<Stop> {
    loop {
        src.readable().await?;
        // Hold one buffer while bytes keep coming, as with the pipe above.
        let mut buf = shared.bufs.take();
        loop {
            let n = match src.try_read(&mut buf) {
                Ok(0) => {
                    shared.bufs.give(buf);
                    half_close(dst, progress);
                    return Ok(Stop::Eof);
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    shared.bufs.give(buf);
                    break;
                }
                Err(err) => return Err(err),
            };
            let mut off = 0;
            while off < n {
                dst.writable().await?;
                match dst.try_write(&buf[off..n]) {
                    Ok(m) => {
                        off += m;
                        progress.note(m);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
            if switch_at.is_some_and(|at| progress.moved.load(Ordering::Relaxed) >= at) {
                shared.bufs.give(buf);
                return Ok(Stop::Switch);
            }
        }
    }
}
