//! The cooperative core every socket type is built on: an owned,
//! non-blocking socket plus its reactor [`Registration`], the per-socket
//! settings (timeouts, the non-blocking flag) and `close(&self)`.
//!
//! # Hot path
//! An operation runs its non-blocking syscall first and parks only on
//! `WouldBlock`, which clears the readiness flag; the reactor's next edge
//! sets it again. A short read (fewer bytes than asked, on a stream socket)
//! clears read readiness too, so the next read parks without a syscall
//! that would return `EAGAIN`, where the reactor can tell that the read
//! side has not ended (Linux; elsewhere the next read finds out); likewise
//! a short write. The registration is made lazily, the first time
//! readiness must be recorded, and never changed afterwards: no
//! registration syscall per operation, no allocation.
//!
//! # Closing while others wait
//! [`Evented::close`] takes `&self`, like every operation, so it can run
//! while another greenlet is parked on the same socket. It frees nothing:
//! the socket, its registration and its flags stay in place until the
//! value is dropped (a parked waiter still borrows them). `close` fails the
//! waiters with `Interrupted::Cancelled`, deregisters the fd, and makes it
//! dead at once by `dup3`-ing a placeholder over it (an `O_PATH` fd of `/`,
//! on which I/O fails with `EBADF`; on macOS a read-only fd of `/` by
//! `dup2`, see `sys.rs`): the socket is released now (the peer sees the
//! close), while the fd *number* stays allocated until the value is
//! dropped. So a waiter that has not run yet, or a `BorrowedFd` from
//! `as_fd`, never refers to a number the process may have reused.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use greenlet_runtime::{deadline_within, Direction, Interrupted, Registration};

use crate::sys;

/// The error of an operation on a closed socket: `EBADF`, "Bad file
/// descriptor".
pub(crate) fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// The error of a per-socket timeout: `TimedOut`, "timed out".
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// Is `e` the plain "timed out" of a wait's own deadline (not a `Timeout`
/// guard's interruption)?
pub(crate) fn is_own_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && Interrupted::from_io(e).is_none()
}

/// std's error for `set_read_timeout(Some(ZERO))` and the like.
pub(crate) fn zero_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

/// Is `e` the error of a wait cancelled by `close`/`shutdown`/`cancel_wait`?
pub(crate) fn is_cancelled(e: &io::Error) -> bool {
    matches!(Interrupted::from_io(e), Some(Interrupted::Cancelled))
}

/// A process-wide fd on which every I/O operation fails with `EBADF` (an
/// `O_PATH` fd of `/`; on macOS a read-only directory fd of `/`, on which
/// I/O fails with `EISDIR`, `EBADF` or `ENOTSOCK`), dup'ed over the fd of a socket closed while
/// greenlets still wait on it, so its number stays taken until they have
/// seen the close. `None` when it cannot be opened now (at the fd limit:
/// then callers shut the socket down instead, and the next close tries
/// again). Shared with greenlet-monkey's `close` hook; not for users.
#[doc(hidden)]
pub fn closed_fd_placeholder() -> Option<BorrowedFd<'static>> {
    static DEAD: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = DEAD.get() {
        return Some(fd.as_fd());
    }
    let fd = sys::open_placeholder().ok()?;
    // Another thread may have won meanwhile: then ours is closed unused.
    Some(DEAD.get_or_init(|| fd).as_fd())
}

/// A cooperative socket: `S` is the std (or socket2) socket type, always in
/// non-blocking mode at the OS level.
///
/// One cache line, aligned, holding everything an operation reads but the
/// reactor's source: every operation reads it, usually from the frame of a
/// greenlet that has just been resumed after its stack's lines left the
/// cache. Unaligned it straddled two lines half the time (echo at 500
/// connections: 20.4 → 17.5 L1d misses per request); with the socket and
/// its registration in an `Rc` of their own, a resumed operation missed
/// that line too (15.25 → 14.1).
///
/// Field order matters: the registration is dropped before the socket.
#[repr(align(64))]
pub(crate) struct Evented<S: AsRawFd> {
    reg: OnceCell<Registration>,
    /// The socket; after `close` its fd refers to the placeholder, kept so
    /// the fd number stays allocated while `self` lives.
    sock: S,
    /// Set by `close`: operations fail with `EBADF`, and a waiter that
    /// resumes finds the socket gone.
    closed: Cell<bool>,
    nonblocking: Cell<bool>,
    /// Per [`Direction`], bumped by `shutdown` of that direction: tells
    /// its waiter its wait was cancelled (`cancel_waiters` ends the waits
    /// of both directions; the other one waits again).
    gens: [Cell<u32>; 2],
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl<S: AsRawFd> Evented<S> {
    /// Wraps `sock`, which must already be in non-blocking mode. Does no
    /// syscall: the registration is made when first needed.
    pub(crate) fn new(sock: S) -> Evented<S> {
        Evented {
            reg: OnceCell::new(),
            sock,
            closed: Cell::new(false),
            nonblocking: Cell::new(false),
            gens: Default::default(),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// A new socket with this one's settings (for `try_clone`).
    pub(crate) fn with_settings_of<T: AsRawFd>(sock: S, other: &Evented<T>) -> Evented<S> {
        let e = Evented::new(sock);
        e.read_timeout.set(other.read_timeout.get());
        e.write_timeout.set(other.write_timeout.get());
        e.nonblocking.set(other.nonblocking.get());
        e
    }

    /// Its registration, made on first use. The made case is on every
    /// operation's path, so it is inline and the first use out of line
    /// (left to itself, the compiler inlined the whole or nothing,
    /// depending on unrelated code elsewhere in the crate).
    #[inline]
    fn registration(&self) -> io::Result<&Registration> {
        match self.reg.get() {
            Some(r) => Ok(r),
            None => self.register(),
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&self) -> io::Result<&Registration> {
        // SAFETY: the fd is owned by `self.sock`, which is dropped after
        // `self.reg` (field order), or after the registration is taken out
        // and dropped (`into_inner`, `into_raw_fd`). `close` replaces the
        // fd with a placeholder instead of closing it, so the number stays
        // open.
        let r = unsafe { Registration::new(self.sock.as_raw_fd()) }?;
        Ok(self.reg.get_or_init(|| r))
    }

    #[inline]
    fn ready(&self, dir: Direction) -> bool {
        self.reg.get().is_none_or(|r| r.is_ready(dir))
    }

    /// Records that `dir` is not ready (registering the fd if needed).
    #[inline]
    fn clear(&self, dir: Direction) -> io::Result<()> {
        self.registration()?.clear_ready(dir);
        Ok(())
    }

    /// After a short read or write: see
    /// [`Registration::clear_ready_after_short`].
    #[inline]
    fn clear_after_short(&self, dir: Direction) -> io::Result<()> {
        self.registration()?.clear_ready_after_short(dir);
        Ok(())
    }

    /// Waits until `dir` is ready, or until the deadline: `timeout` from
    /// the operation's first wait, which sets `deadline` (`Some(None)`: no
    /// timeout). `Ok` may be spurious (the caller retries its operation or
    /// waits again).
    #[inline]
    fn wait(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        deadline: &mut Option<Option<Instant>>,
    ) -> io::Result<()> {
        let deadline = *deadline.get_or_insert_with(|| deadline_within(timeout));
        let reg = self.registration()?;
        let gen = self.gens[dir as usize].get();
        let r = reg.wait_until(dir, deadline);
        if self.closed.get() {
            return Err(Interrupted::Cancelled.into());
        }
        match r {
            // `shutdown` of the other direction ended this wait too.
            Err(e) if is_cancelled(&e) && self.gens[dir as usize].get() == gen => Ok(()),
            r => r,
        }
    }

    /// The socket; `EBADF` once closed.
    #[inline]
    fn open(&self) -> io::Result<&S> {
        if self.closed.get() {
            return Err(ebadf());
        }
        Ok(&self.sock)
    }

    /// Runs `f` on the open socket (a syscall that never blocks, such as
    /// `peer_addr` or a socket option); `EBADF` if closed.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&S) -> io::Result<R>) -> io::Result<R> {
        f(self.open()?)
    }

    /// Runs the read-side operation `op` cooperatively: try first, park on
    /// `WouldBlock` (up to the read timeout), retry. `short(&r)` says
    /// whether a result means the socket's receive buffer is now empty
    /// (a short read on a stream socket), so readiness is cleared.
    #[inline]
    pub(crate) fn read<R>(
        &self,
        op: impl FnMut(&S) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        self.op(Direction::Read, self.read_timeout.get(), op, short)
    }

    /// As [`Evented::read`], for the write side (write timeout).
    #[inline]
    pub(crate) fn write<R>(
        &self,
        op: impl FnMut(&S) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        self.op(Direction::Write, self.write_timeout.get(), op, short)
    }

    #[inline]
    fn op<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut(&S) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let sock = self.open()?;
        let nonblocking = self.nonblocking.get();
        let mut deadline = None;
        loop {
            // In non-blocking mode the caller handles `WouldBlock` itself
            // (perhaps after its own readiness wait), so always try.
            if nonblocking || self.ready(dir) {
                match op(sock) {
                    Ok(r) => {
                        if short(&r) {
                            // Best effort: without it the next operation
                            // costs one `EAGAIN` syscall.
                            let _ = self.clear_after_short(dir);
                        }
                        return Ok(r);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if nonblocking {
                            return Err(e);
                        }
                        self.clear(dir)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            match self.wait(dir, timeout, &mut deadline) {
                // Readiness edges are coarse: the kernel reports a socket
                // writable again only once about a third of its send buffer
                // is free, so a slow but live reader can take bytes all
                // through the timeout without an edge. Like `SO_SNDTIMEO`,
                // time out only if the operation still cannot make progress.
                Err(e) if is_own_timeout(&e) => {
                    return match op(sock) {
                        Err(w) if w.kind() == io::ErrorKind::WouldBlock => Err(e),
                        r => r,
                    };
                }
                r => r?,
            }
        }
    }

    /// Waits for a non-blocking `connect` in progress to finish (write
    /// readiness), up to `timeout`. The caller then reads `SO_ERROR`.
    pub(crate) fn wait_connected(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.open()?;
        self.clear(Direction::Write)?;
        let mut deadline = None;
        loop {
            self.wait(Direction::Write, timeout, &mut deadline)?;
            if self.ready(Direction::Write) {
                return Ok(());
            }
        }
    }

    /// Closes the socket now; see the module docs. Idempotent; never fails
    /// and never switches. Waiters get `Interrupted::Cancelled` ("File
    /// descriptor was closed in another greenlet").
    pub(crate) fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        // Deregister now, while the fd still refers to the socket: after
        // the `dup3` below a delete would miss, and if another fd keeps the
        // socket open (`try_clone`, `dup`) its epoll entry would stay
        // behind. The registration itself stays (a waiter may still borrow
        // it); deregistered, it reports "ready" and its drop does nothing.
        if let Some(reg) = self.reg.get() {
            reg.deregister();
        }
        let fd = self.sock.as_raw_fd();
        // And the waits on the fd by number (`select`, `wait_read`, a
        // `Watcher`), whose duplicates would keep the socket open.
        crate::wait::closing_fd(fd);
        let replaced = closed_fd_placeholder().is_some_and(|p| {
            // SAFETY: `fd` is open and owned by `self.sock`; it is made to
            // refer to the placeholder, releasing the socket (it closes if
            // no other fd refers to it) without freeing the number.
            unsafe { sys::dup_over(p, fd) }.is_ok()
        });
        if !replaced {
            // No placeholder: keep the fd until drop, but end the connection.
            // SAFETY: `fd` is open and owned by `self.sock`.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    /// True once [`Evented::close`] has run.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Shuts down `how` with `f`, failing the waiters of that direction with
    /// `Interrupted::Cancelled` (gevent: `shutdown` cancels the waits).
    pub(crate) fn shutdown(
        &self,
        how: Shutdown,
        f: impl FnOnce(&S, Shutdown) -> io::Result<()>,
    ) -> io::Result<()> {
        let r = f(self.open()?, how);
        let dirs: &[Direction] = match how {
            Shutdown::Read => &[Direction::Read],
            Shutdown::Write => &[Direction::Write],
            Shutdown::Both => &[Direction::Read, Direction::Write],
        };
        for &d in dirs {
            let gen = &self.gens[d as usize];
            gen.set(gen.get().wrapping_add(1));
        }
        if let Some(reg) = self.reg.get() {
            reg.cancel_waiters();
        }
        r
    }

    /// The fd: the socket's, or after `close` the dead placeholder's copy
    /// (the number is the same and stays allocated until drop).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The fd, borrowed for as long as `self`.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `self.sock` owns the fd for as long as `self` lives, and
        // `close` keeps the number open (a placeholder is dup'ed over it),
        // so it stays a valid open fd for the borrow's lifetime.
        unsafe { BorrowedFd::borrow_raw(self.raw_fd()) }
    }

    /// Takes the socket out, deregistered: `EBADF` if it was closed.
    pub(crate) fn into_inner(self) -> io::Result<S> {
        if self.closed.get() {
            return Err(ebadf());
        }
        let Evented { reg, sock, .. } = self;
        drop(reg);
        Ok(sock)
    }

    /// Converts the socket type (same fd), keeping the registration, the
    /// settings and the closed state (for `Socket` -> `TcpStream` and the
    /// like).
    pub(crate) fn map<T: AsRawFd>(self, f: impl FnOnce(S) -> T) -> Evented<T> {
        let Evented {
            reg,
            sock,
            closed,
            nonblocking,
            gens,
            read_timeout,
            write_timeout,
        } = self;
        Evented {
            reg,
            sock: f(sock),
            closed,
            nonblocking,
            gens,
            read_timeout,
            write_timeout,
        }
    }

    /// Gives up ownership of the fd (after `close`, of the dead
    /// placeholder copy), deregistered.
    pub(crate) fn into_raw_fd(self) -> RawFd
    where
        S: IntoRawFd,
    {
        let Evented { reg, sock, .. } = self;
        drop(reg);
        sock.into_raw_fd()
    }

    /// The read timeout; `EBADF` if closed.
    pub(crate) fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.with(|_| Ok(self.read_timeout.get()))
    }

    /// The write timeout; `EBADF` if closed.
    pub(crate) fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.with(|_| Ok(self.write_timeout.get()))
    }

    /// Sets the read timeout; `InvalidInput` for zero, `EBADF` if closed.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(zero_timeout());
        }
        self.with(|_| {
            self.read_timeout.set(t);
            Ok(())
        })
    }

    /// Sets the write timeout; `InvalidInput` for zero, `EBADF` if closed.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(zero_timeout());
        }
        self.with(|_| {
            self.write_timeout.set(t);
            Ok(())
        })
    }

    /// Sets our non-blocking flag (the OS fd always is); `EBADF` if closed.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.with(|_| {
            self.nonblocking.set(nonblocking);
            Ok(())
        })
    }

    /// Our non-blocking flag.
    pub(crate) fn nonblocking(&self) -> bool {
        self.nonblocking.get()
    }

    /// Formats as `Name(<the std socket's Debug>)`, or `Name(closed)`.
    pub(crate) fn fmt_debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        S: fmt::Debug,
    {
        match self.open() {
            Ok(sock) => f.debug_tuple(name).field(sock).finish(),
            Err(_) => write!(f, "{name}(closed)"),
        }
    }
}

/// Converting std sockets in and out (`from_std` / `into_std` of every
/// socket type).
impl<S: AsRawFd + AsFd> Evented<S> {
    /// Adopts a std socket: non-blocking at the OS level; with
    /// `timeouts`, its `SO_RCVTIMEO`/`SO_SNDTIMEO` become this object's
    /// read and write timeouts.
    pub(crate) fn adopt(sock: S, timeouts: bool) -> io::Result<Evented<S>> {
        let r = socket2::SockRef::from(&sock);
        let t = if timeouts {
            (r.read_timeout()?, r.write_timeout()?)
        } else {
            (None, None)
        };
        r.set_nonblocking(true)?;
        let e = Evented::new(sock);
        e.set_read_timeout(t.0)?;
        e.set_write_timeout(t.1)?;
        Ok(e)
    }

    /// Gives the socket back, deregistered, in this object's blocking mode
    /// and, with `timeouts`, with its timeouts applied to the OS socket.
    pub(crate) fn release(self, timeouts: bool) -> io::Result<S> {
        let (rt, wt) = (self.read_timeout()?, self.write_timeout()?);
        let nonblocking = self.nonblocking();
        let sock = self.into_inner()?;
        let r = socket2::SockRef::from(&sock);
        r.set_nonblocking(nonblocking)?;
        if timeouts {
            r.set_read_timeout(rt)?;
            r.set_write_timeout(wt)?;
        }
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_handle_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Evented<std::net::TcpStream>>(), 64);
        assert_eq!(std::mem::size_of::<Evented<socket2::Socket>>(), 64);
    }
}
