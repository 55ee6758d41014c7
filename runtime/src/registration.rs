//! [`Registration`]: an fd on the current thread's reactor, the handle
//! cooperative I/O is built on.
//!
//! It holds its reactor [`Source`] itself, so asking about readiness or
//! clearing it is a field access; only a wait reaches the hub. Every wait
//! for readiness goes through one path, [`Registration::wait_until`], with
//! a deadline (an `Instant`, read from the clock once per operation).
//!
//! ```
//! use greenlet_runtime::{spawn, Registration};
//! use std::io::{Read, Write};
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//!
//! let (mut a, b) = UnixStream::pair().unwrap();
//! b.set_nonblocking(true).unwrap();
//! // SAFETY: `b` outlives `reg` (reg is dropped first below).
//! let reg = unsafe { Registration::new(b.as_raw_fd()) }.unwrap();
//! spawn(move || a.write_all(b"ping").unwrap());
//! let mut buf = [0u8; 4];
//! let n = reg.read_with(None, || (&b).read(&mut buf)).unwrap();
//! assert_eq!(&buf[..n], b"ping");
//! drop(reg);
//! ```

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::deadline::deadline_within;
use crate::hub::Hub;
use crate::interrupt::Interrupted;
use crate::reactor::Source;

pub use crate::reactor::Direction;

/// An fd registered with the current thread's reactor: the building block of
/// cooperative sockets.
///
/// Registered once, edge-triggered, for both directions; readiness starts as
/// "ready" so the first operation tries its syscall. At most one greenlet
/// may wait per direction: a second gets `ResourceBusy` (gevent's
/// ConcurrentObjectUseError). `!Send`: it belongs to its hub's thread.
pub struct Registration {
    source: Rc<Source>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.source.fd())
            .finish()
    }
}

/// The error of a wait whose own deadline passed: `TimedOut`, "timed out".
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

impl Registration {
    /// Registers `fd` with this thread's reactor. The fd should be in
    /// non-blocking mode.
    ///
    /// # Safety
    /// `fd` must stay open until this `Registration` is dropped (drop it
    /// before closing the fd): otherwise the number could be reused by an
    /// unrelated file whose registration this one would then delete.
    ///
    /// # Errors
    /// The error of the poller's registration, e.g. `EBADF` for an fd that
    /// is not open, `EPERM` for a regular file on Linux (which is always
    /// ready; do not register), `EEXIST` if this fd is registered already;
    /// on the thread's first use of greenlet, the error of making its hub's
    /// poller (`EMFILE` at the fd limit).
    pub unsafe fn new(fd: RawFd) -> io::Result<Registration> {
        let source = Hub::with_io(|hub| hub.register_fd(fd))?;
        Ok(Registration { source })
    }

    /// The registered fd.
    pub fn fd(&self) -> RawFd {
        self.source.fd()
    }

    /// Whether the last known readiness of `dir` is "ready". Always true
    /// once the hub it was registered with has shut down.
    #[inline]
    pub fn is_ready(&self, dir: Direction) -> bool {
        self.source.is_ready(dir)
    }

    /// Forgets `dir`'s readiness: the next operation waits for the next
    /// edge. Call after `WouldBlock`, or after a short read (write) on a
    /// stream socket. Does nothing once that side has ended (FIN or
    /// hang-up seen): operations then return at once and no further edge
    /// would come.
    #[inline]
    pub fn clear_ready(&self, dir: Direction) {
        self.source.clear_ready(dir)
    }

    /// After a short read (fewer bytes than asked) or short write on a
    /// stream socket: forgets `dir`'s readiness if no further edge can be
    /// missed, so the next operation parks without a syscall that would
    /// return `EAGAIN`. Read readiness is kept unless the reactor's last
    /// read edge said the read side was still open (Linux: `EPOLLRDHUP`):
    /// the data just read may have come with the peer's FIN in one edge,
    /// and then only the next read can find the end.
    #[inline]
    pub fn clear_ready_after_short(&self, dir: Direction) {
        self.source.clear_ready_after_short(dir)
    }

    /// Whether the last known read readiness is "ready".
    pub fn is_readable(&self) -> bool {
        self.is_ready(Direction::Read)
    }

    /// Whether the last known write readiness is "ready".
    pub fn is_writable(&self) -> bool {
        self.is_ready(Direction::Write)
    }

    /// Forgets read readiness; see [`Registration::clear_ready`].
    #[inline]
    pub fn clear_readable(&self) {
        self.clear_ready(Direction::Read)
    }

    /// Forgets write readiness; see [`Registration::clear_ready`].
    #[inline]
    pub fn clear_writable(&self) {
        self.clear_ready(Direction::Write)
    }

    /// Waits until the fd is readable (returns at once if it is known to be).
    ///
    /// # Errors
    /// As [`Registration::wait_until`], with the deadline `timeout` from now.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.wait_until(Direction::Read, deadline_within(timeout))
    }

    /// Waits until the fd is writable; as [`Registration::wait_readable`].
    ///
    /// # Errors
    /// As [`Registration::wait_until`].
    pub fn wait_writable(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.wait_until(Direction::Write, deadline_within(timeout))
    }

    /// Waits until `dir` is ready (returns at once if it is known to be),
    /// or until `deadline` (`None`: no deadline). The one readiness wait
    /// every cooperative I/O operation uses.
    ///
    /// # Errors
    /// `TimedOut` ("timed out") at `deadline`; `ResourceBusy` if another
    /// greenlet already waits for `dir`; `NotConnected` if the hub it was
    /// registered with has shut down; the `io::Error` of an
    /// [`Interrupted`] (a `Timeout` guard, `Cancelled` when the fd was
    /// closed or the wait cancelled by another greenlet, `LoopExit`).
    #[inline]
    pub fn wait_until(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let s = &*self.source;
        if s.is_orphaned() {
            return Err(s.orphaned());
        }
        loop {
            if s.is_ready(dir) {
                return Ok(());
            }
            if s.is_busy(dir) {
                return Err(s.busy(dir));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out());
            }
            Hub::with(|hub| hub.park_io(s, dir, deadline))?;
        }
    }

    /// Waits until one of `waits` (a registration and a direction each) is
    /// ready (returns at once if one is known to be), or until `deadline`:
    /// `select` over registrations. Every registration must belong to this
    /// thread's hub.
    ///
    /// # Errors
    /// As [`Registration::wait_until`]: `TimedOut` at `deadline`,
    /// `ResourceBusy` if another greenlet already waits for one of them,
    /// `NotConnected` if their hub has shut down, the `io::Error` of an
    /// [`Interrupted`]; `InvalidInput` for an empty `waits` (it would wait
    /// forever).
    pub fn wait_any(
        waits: &[(&Registration, Direction)],
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        if waits.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a wait for any of no registrations would wait forever",
            ));
        }
        let sources: Vec<(&Source, Direction)> =
            waits.iter().map(|(r, dir)| (&*r.source, *dir)).collect();
        loop {
            for &(s, dir) in &sources {
                s.check_waitable(dir)?;
            }
            if sources.iter().any(|&(s, dir)| s.is_ready(dir)) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out());
            }
            Hub::with(|hub| hub.park_io_any(&sources, deadline))?;
        }
    }

    /// Runs the non-blocking read operation `op` until it does not return
    /// `WouldBlock`, waiting for read readiness in between (try-first: no
    /// wait when the fd is known to be readable).
    ///
    /// # Errors
    /// `op`'s own errors, and those of [`Registration::wait_until`].
    #[inline]
    pub fn read_with<R>(
        &self,
        timeout: Option<Duration>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_with(Direction::Read, timeout, op)
    }

    /// Runs the non-blocking write operation `op` until it does not return
    /// `WouldBlock`, waiting for write readiness in between.
    ///
    /// # Errors
    /// `op`'s own errors, and those of [`Registration::wait_until`].
    #[inline]
    pub fn write_with<R>(
        &self,
        timeout: Option<Duration>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_with(Direction::Write, timeout, op)
    }

    #[inline]
    fn io_with<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline_within(timeout);
        loop {
            if self.is_ready(dir) {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_ready(dir),
                    r => return r,
                }
            }
            match self.wait_until(dir, deadline) {
                // Readiness edges are coarse (the writable edge comes only
                // once about a third of the send buffer is free): at the
                // deadline, try once more, so a slow but live peer still
                // makes progress (`SO_SNDTIMEO`'s rule: time out only when
                // nothing could be done).
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        && Interrupted::from_io(&e).is_none() =>
                {
                    return match op() {
                        Err(w) if w.kind() == io::ErrorKind::WouldBlock => Err(e),
                        r => r,
                    };
                }
                r => r?,
            }
        }
    }

    /// Fails the current waiters (if any) with [`Interrupted::Cancelled`]
    /// ("File descriptor was closed in another greenlet"). Never switches.
    pub fn cancel_waiters(&self) {
        self.cancel_with(Interrupted::Cancelled);
    }

    /// Fails the current waiters (if any) with `reason`. Never switches.
    pub fn cancel_with(&self, reason: Interrupted) {
        if !self.source.is_attached() {
            return;
        }
        let waiters = Hub::with(|hub| hub.take_io_waiters(&self.source));
        for w in waiters.into_iter().flatten() {
            w.interrupt(reason.clone());
        }
    }
}

impl Source {
    /// The error of a wait that cannot park here: its hub is gone, or
    /// another greenlet waits for `dir`.
    fn check_waitable(&self, dir: Direction) -> io::Result<()> {
        if self.is_orphaned() {
            return Err(self.orphaned());
        }
        if !self.is_ready(dir) && self.is_busy(dir) {
            return Err(self.busy(dir));
        }
        Ok(())
    }

    // Cold: kept out of `wait_until`, which is inlined into every
    // operation's parked path.
    #[cold]
    fn orphaned(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            format!(
                "fd {} was registered with a hub that has been shut down; make the socket again",
                self.fd()
            ),
        )
    }

    #[cold]
    fn busy(&self, dir: Direction) -> io::Error {
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "another greenlet is already waiting to {} fd {}",
                dir.verb(),
                self.fd()
            ),
        )
    }
}

impl Registration {
    /// Deletes the fd from the poller now, while it still refers to the
    /// same file, and fails any waiter with [`Interrupted::Cancelled`].
    /// Afterwards the registration reports "ready" (operations go to their
    /// syscall, waits return at once) and dropping it does nothing more.
    /// Idempotent; never switches.
    ///
    /// Needed before an fd is closed or replaced (`dup2`) while another fd
    /// for the same socket exists (`try_clone`, `dup`): epoll keeps an entry
    /// for as long as its *file* lives, and only a delete made through an
    /// fd that still names that file removes it.
    pub fn deregister(&self) {
        if !self.source.is_attached() {
            return; // deregistered already, or its hub is gone
        }
        let waiters = Hub::try_with(|hub| hub.deregister_fd(&self.source));
        for w in waiters.into_iter().flatten().flatten() {
            w.interrupt(Interrupted::Cancelled);
        }
    }
}

impl Drop for Registration {
    /// Deregisters the fd and fails any waiter with `Cancelled`.
    fn drop(&mut self) {
        self.deregister();
    }
}
