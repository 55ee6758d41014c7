//! Waiting for readiness of any fd (sockets, pipes, eventfds, ...):
//! [`wait_read`], [`wait_write`], [`wait_readwrite`], [`Watcher`], [`wait`]
//! and [`cancel_wait`] (gevent's "Gevent Extensions" of `gevent.socket`).
//!
//! These report *level* readiness, as `select(2)` would: a wait returns at
//! once while the fd is readable (or writable). A readiness check is one
//! `poll(2)` with a zero timeout; only when the fd is not ready does the
//! greenlet park, on the hub's own reactor, through a registration of a
//! duplicate of the fd (`F_DUPFD_CLOEXEC`) made for the wait. The
//! duplicate is ours: the sockets of this crate, whose own fds are
//! registered already, can be waited on too, and a foreign fd that is
//! closed later can never disturb another registration (the duplicate is
//! deregistered before it is closed).
//!
//! ```
//! use greenlet_net::{wait_read, UnixStream};
//! use greenlet_runtime::spawn;
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! let (a, mut b) = UnixStream::pair().unwrap();
//! spawn(move || b.write_all(b"!").unwrap());
//! wait_read(a.as_raw_fd(), Some(Duration::from_secs(5))).unwrap();
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use greenlet_runtime::{Direction, Registration};

use crate::evented::{ebadf, timed_out};

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Readable (or at end of file, hung up, or in error).
    Read,
    /// Writable (or hung up, or in error).
    Write,
    /// Either.
    ReadWrite,
}

impl Interest {
    fn poll_events(self) -> i16 {
        match self {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
            Interest::ReadWrite => libc::POLLIN | libc::POLLOUT,
        }
    }
}

/// `poll(2)` with a zero timeout: fills `revents`, returns how many are set.
pub(crate) fn poll_now(pfds: &mut [libc::pollfd]) -> io::Result<usize> {
    loop {
        // SAFETY: `pfds` is a valid, writable array of `pfds.len()` pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `EBADF` if `poll` found an fd that is not open.
pub(crate) fn check_open(pfds: &[libc::pollfd]) -> io::Result<()> {
    if pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        return Err(ebadf());
    }
    Ok(())
}

/// Each registration of an [`FdWaker`] (of a duplicate) with the fd it
/// stands for and the directions it is watched for.
type Regs = Vec<(RawFd, Registration, &'static [Direction])>;

thread_local! {
    /// This thread's fd wakers, so that closing one of this crate's
    /// sockets ends the waits on its fd ([`closing_fd`]; gevent's
    /// `loop.closing_fd`). Usually empty.
    static WAKERS: RefCell<Vec<Weak<Regs>>> = const { RefCell::new(Vec::new()) };
}

/// Ends every `select`, `wait_read`/`wait_write` and [`Watcher`] wait of
/// this thread on `fd` with "File descriptor was closed in another
/// greenlet", as `close` of a socket of this crate does (the monkey hooks'
/// `close` too). Their duplicates of `fd` kept the socket open; a `select`
/// that ends drops them. Never switches; not for users.
#[doc(hidden)]
pub fn closing_fd(fd: RawFd) {
    let waiting: Vec<Rc<Regs>> = WAKERS
        .try_with(|w| {
            let w = w.try_borrow().ok()?;
            let watches = |regs: &Rc<Regs>| regs.iter().any(|(f, ..)| *f == fd);
            Some(w.iter().filter_map(Weak::upgrade).filter(watches).collect())
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    // Cancelled after the borrow: a woken waiter may drop its waker.
    for regs in waiting {
        for (_, reg, _) in regs.iter().filter(|(f, ..)| *f == fd) {
            reg.cancel_waiters();
        }
    }
}

/// A wake-up source for a set of fds: each fd duplicated and the
/// duplicate registered with the hub's reactor (edge-triggered), so an edge
/// in a watched direction of any of them wakes the parked greenlet.
pub(crate) struct FdWaker {
    /// Dropped before `_dups` (field order): each fd is deregistered while
    /// it is still open. Shared only weakly, with `WAKERS`.
    regs: Rc<Regs>,
    _dups: Vec<OwnedFd>,
}

impl FdWaker {
    /// Watches `fds` (fd, `poll` events). A regular file (which Linux's
    /// epoll refuses: it is always ready) is skipped.
    ///
    /// # Errors
    /// `EBADF` for an fd that is not open; OS errors (`EMFILE`, ...).
    pub(crate) fn new(fds: impl IntoIterator<Item = (RawFd, i16)>) -> io::Result<FdWaker> {
        // `dups` first, so that an early return drops it last: each
        // registration before its duplicate is closed (a closed duplicate
        // cannot be deleted from the epoll instance, and its entry would
        // stay for as long as the original fd is open).
        let mut dups = Vec::new();
        let mut regs = Vec::new();
        for (fd, events) in fds {
            let dirs: &'static [Direction] =
                match (events & libc::POLLIN != 0, events & libc::POLLOUT != 0) {
                    (true, true) => &[Direction::Read, Direction::Write],
                    (true, false) => &[Direction::Read],
                    (false, true) => &[Direction::Write],
                    (false, false) => continue,
                };
            // SAFETY: plain syscall; the kernel checks `fd`.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a new fd that nothing else owns.
            let dup = unsafe { OwnedFd::from_raw_fd(dup) };
            // SAFETY: `dup` is kept open in `_dups` until after the
            // registration is dropped (field order).
            match unsafe { Registration::new(dup.as_raw_fd()) } {
                Ok(reg) => regs.push((fd, reg, dirs)),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => continue,
                Err(e) => return Err(e),
            }
            dups.push(dup);
        }
        let regs = Rc::new(regs);
        if !regs.is_empty() {
            WAKERS.with(|w| w.borrow_mut().push(Rc::downgrade(&regs)));
        }
        Ok(FdWaker { regs, _dups: dups })
    }

    /// Waits until one of the fds may have become ready (spurious wake-ups
    /// are possible: check again). Call after a check found none ready.
    ///
    /// # Errors
    /// `TimedOut` ("timed out") at `deadline`; `ResourceBusy` if another
    /// greenlet waits on it; the `io::Error` of an [`Interrupted`](greenlet_runtime::Interrupted).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<()> {
        let waits: Vec<(&Registration, Direction)> = self
            .regs
            .iter()
            .flat_map(|(_, reg, dirs)| dirs.iter().map(move |&dir| (reg, dir)))
            .collect();
        if waits.is_empty() {
            // Only regular files, which are always ready: a check finds
            // them so; nothing to park on.
            return Ok(());
        }
        // The check just found none ready: only an edge after it counts.
        for &(reg, dir) in &waits {
            reg.clear_ready(dir);
        }
        Registration::wait_any(&waits, deadline)
    }

    /// Fails the parked greenlet (if any) with `Interrupted::Cancelled`.
    pub(crate) fn cancel(&self) {
        for (_, reg, _) in self.regs.iter() {
            reg.cancel_waiters();
        }
    }
}

impl Drop for FdWaker {
    fn drop(&mut self) {
        if self.regs.is_empty() {
            return; // never listed
        }
        let me = Rc::as_ptr(&self.regs);
        let _ = WAKERS.try_with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                w.retain(|regs| regs.as_ptr() != me);
            }
        });
    }
}

/// A reusable readiness watch of one fd (gevent's `io` watcher): create it
/// once, [`wait`] on it any number of times, [`cancel_wait`] it from another
/// greenlet. One greenlet may wait on a watcher at a time. Closing one of
/// this crate's sockets (`close`; with the monkey hooks, any `close(2)`)
/// ends a wait on its fd with the closed-socket error; a raw `close(2)`
/// otherwise does not (cancel first). The watcher holds a duplicate of the
/// fd while it lives, so a socket's file stays open until the watcher is
/// dropped. `!Send`.
///
/// ```
/// use greenlet_net::{cancel_wait, wait, Interest, UnixStream, Watcher};
/// use greenlet_runtime::spawn;
/// use std::os::fd::AsRawFd;
/// use std::rc::Rc;
///
/// let (a, _b) = UnixStream::pair().unwrap();
/// let w = Rc::new(Watcher::new(a.as_raw_fd(), Interest::Read).unwrap());
/// let w2 = w.clone();
/// let canceller = spawn(move || {
///     cancel_wait(&w2, std::io::Error::other("shutting down"));
/// });
/// let err = wait(&w, None).unwrap_err();
/// assert_eq!(err.to_string(), "shutting down");
/// canceller.join().unwrap();
/// ```
pub struct Watcher {
    waker: FdWaker,
    fd: RawFd,
    interest: Interest,
    waiting: Cell<bool>,
    cancel: Cell<Option<io::Error>>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("fd", &self.fd)
            .field("interest", &self.interest)
            .field("waiting", &self.waiting.get())
            .finish()
    }
}

impl Watcher {
    /// A watcher of `fd` for `interest`.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open; OS errors (`EMFILE`).
    pub fn new(fd: RawFd, interest: Interest) -> io::Result<Watcher> {
        Ok(Watcher {
            waker: FdWaker::new([(fd, interest.poll_events())])?,
            fd,
            interest,
            waiting: Cell::new(false),
            cancel: Cell::new(None),
        })
    }

    /// The watched fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// What it waits for.
    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// True while a greenlet waits on it.
    pub fn is_waiting(&self) -> bool {
        self.waiting.get()
    }

    /// Is the fd ready now? (one `poll(2)`)
    fn ready_now(&self) -> io::Result<bool> {
        let mut p = [libc::pollfd {
            fd: self.fd,
            events: self.interest.poll_events(),
            revents: 0,
        }];
        let n = poll_now(&mut p)?;
        check_open(&p)?;
        Ok(n > 0)
    }
}

/// Resets a watcher's `waiting` flag when the wait ends (also by a kill).
struct Waiting<'a>(&'a Watcher);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(false);
        self.0.cancel.set(None);
    }
}

/// Waits until `watcher`'s fd is ready for its interest (gevent's
/// `wait(io, timeout)`); returns at once if it already is.
///
/// # Errors
/// `TimedOut` ("timed out") after `timeout`; the error given to
/// [`cancel_wait`] by another greenlet; `ResourceBusy` if another greenlet
/// already waits on this watcher; `EBADF` if the fd is not open; the
/// `io::Error` of an interruption (a `Timeout`: `Timeout::is` holds).
pub fn wait(watcher: &Watcher, timeout: Option<Duration>) -> io::Result<()> {
    if watcher.waiting.get() {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "fd {} is already waited on by another greenlet (one waiter per Watcher)",
                watcher.fd
            ),
        ));
    }
    watcher.waiting.set(true);
    watcher.cancel.set(None);
    let _waiting = Waiting(watcher);
    let deadline = greenlet_runtime::deadline_within(timeout);
    loop {
        if watcher.ready_now()? {
            return Ok(());
        }
        let r = watcher.waker.wait(deadline);
        if let Some(e) = watcher.cancel.take() {
            return Err(e);
        }
        r?;
    }
}

/// Ends another greenlet's [`wait`] on `watcher` with `err` (gevent's
/// `cancel_wait`): returns at once, and the waiter gets `err` when it next
/// runs. Does nothing if nobody waits. Never switches.
pub fn cancel_wait(watcher: &Watcher, err: io::Error) {
    if watcher.waiting.get() {
        watcher.cancel.set(Some(err));
        watcher.waker.cancel();
    }
}

fn wait_fd(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    let mut p = [libc::pollfd {
        fd,
        events: interest.poll_events(),
        revents: 0,
    }];
    let ready = poll_now(&mut p)? > 0;
    check_open(&p)?;
    if ready {
        return Ok(());
    }
    if timeout == Some(Duration::ZERO) {
        return Err(timed_out());
    }
    let w = Watcher::new(fd, interest)?;
    wait(&w, timeout)
}

/// Waits until `fd` is readable (gevent's `wait_read`); returns at once if
/// it is. Works for any pollable fd, including this crate's sockets.
///
/// # Errors
/// `TimedOut` ("timed out") after `timeout`; `EBADF` if `fd` is not open
/// (never a hang); the `io::Error` of an interruption.
///
/// ```
/// use greenlet_net::wait_read;
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// let (mut a, b) = UnixStream::pair().unwrap();
/// let t = wait_read(b.as_raw_fd(), Some(Duration::from_millis(5)));
/// assert_eq!(t.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// greenlet_runtime::spawn(move || a.write_all(b"!").unwrap());
/// wait_read(b.as_raw_fd(), None).unwrap(); // parks until the write
/// ```
pub fn wait_read(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::Read, timeout)
}

/// Waits until `fd` is writable; as [`wait_read`].
///
/// # Errors
/// As [`wait_read`].
pub fn wait_write(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::Write, timeout)
}

/// Waits until `fd` is readable or writable; as [`wait_read`].
///
/// # Errors
/// As [`wait_read`].
pub fn wait_readwrite(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::ReadWrite, timeout)
}
