//! The reactor: readiness of file descriptors, on `epoll` (see `epoll.rs`).
//!
//! Each fd is registered once, edge-triggered, for read and write. The hub
//! keeps per-fd readiness flags and at most one read and one write waiter.
//! I/O is try-first: an operation runs its non-blocking syscall and parks
//! only on `WouldBlock`, which consumes the readiness flag; the next edge
//! sets it again. `epoll_wait` runs at most once per loop turn, never per
//! operation, and no `epoll_ctl` happens after registration.
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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::deadline::deadline_within;
use crate::epoll::{Epoll, Notifier, Ready, NOTIFY_KEY};
use crate::hub::Hub;
use crate::interrupt::Interrupted;
use crate::park::{park, Waker};
use crate::timer::{TimerAction, TimerGuard};

/// Capacity of the events buffer filled by one `epoll_wait`.
const EVENTS: usize = 1024;

struct Source {
    fd: RawFd,
    readable: bool,
    writable: bool,
    /// Sticky: the read side reached its end (FIN/hang-up), so clearing read
    /// readiness would park a reader that no edge will ever wake (the FIN
    /// may have come in the same event as the data a short read took).
    read_closed: bool,
    /// Sticky: hung up; writes never block again.
    write_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Source {
    /// A source assumed ready both ways, so the first operation tries its
    /// syscall; no waiters.
    fn ready(fd: RawFd) -> Source {
        Source {
            fd,
            readable: true,
            writable: true,
            read_closed: false,
            write_closed: false,
            reader: None,
            writer: None,
        }
    }
}

pub(crate) struct Reactor {
    /// Replaced in a forked child (`reinit`): the parent's epoll instance
    /// and eventfd are shared with it and must not be touched.
    epoll: RefCell<Epoll>,
    notifier: RefCell<Arc<Notifier>>,
    sources: RefCell<Slab<Source>>,
    /// The `epoll_wait` buffer and the decoded events (kept to reuse their
    /// allocations).
    events: RefCell<(Vec<libc::epoll_event>, Vec<Ready>)>,
    /// Number of `Some` wakers in `sources` (for the deadlock check).
    waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let epoll = Epoll::new()?;
        let notifier = Arc::new(Notifier::new(&epoll)?);
        Ok(Reactor {
            epoll: RefCell::new(epoll),
            notifier: RefCell::new(notifier),
            sources: RefCell::new(Slab::new()),
            events: RefCell::new((
                vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
                Vec::with_capacity(EVENTS),
            )),
            waiters: Cell::new(0),
        })
    }

    /// Wakes this reactor's poll from any thread.
    pub(crate) fn notifier(&self) -> Arc<Notifier> {
        self.notifier.borrow().clone()
    }

    /// In a forked child: a new epoll instance and notifier, with every
    /// registered fd added again. Returns the new notifier.
    pub(crate) fn reinit(&self) -> io::Result<Arc<Notifier>> {
        let epoll = Epoll::new()?;
        let notifier = Arc::new(Notifier::new(&epoll)?);
        for (key, s) in self.sources.borrow().iter() {
            // A source whose fd was closed meanwhile just fails here.
            let _ = epoll.add(s.fd, key as u64);
        }
        *self.epoll.borrow_mut() = epoll; // closes our copy of the old one
        *self.notifier.borrow_mut() = notifier.clone();
        Ok(notifier)
    }

    pub(crate) fn waiters(&self) -> usize {
        self.waiters.get()
    }

    /// Drops waiters whose park already ended (their greenlet died).
    pub(crate) fn drop_stale_waiters(&self) {
        let mut gone = Vec::new();
        for (_, s) in self.sources.borrow_mut().iter_mut() {
            for slot in [&mut s.reader, &mut s.writer] {
                if slot.as_ref().is_some_and(Waker::is_stale) {
                    gone.extend(slot.take());
                }
            }
        }
        self.waiters.set(self.waiters.get() - gone.len());
        drop(gone);
    }

    /// Waits for readiness (or a notify) up to `timeout` and wakes waiters.
    pub(crate) fn poll(&self, timeout: Option<Duration>) {
        let mut ev = self.events.borrow_mut();
        let (buf, ready) = &mut *ev;
        ready.clear();
        if let Err(e) = self.epoll.borrow().wait(buf, timeout, ready) {
            log::error!("polling for I/O readiness failed: {e}");
            return;
        }
        for r in ready.iter() {
            if r.key == NOTIFY_KEY {
                self.notifier.borrow().clear();
                continue;
            }
            let (rw, ww) = {
                let mut sources = self.sources.borrow_mut();
                let Some(s) = sources.get_mut(r.key as usize) else {
                    continue;
                };
                s.readable |= r.readable;
                s.writable |= r.writable;
                s.read_closed |= r.read_closed;
                s.write_closed |= r.write_closed;
                let rw = if r.readable { s.reader.take() } else { None };
                let ww = if r.writable { s.writer.take() } else { None };
                (rw, ww)
            };
            self.waiters
                .set(self.waiters.get() - rw.is_some() as usize - ww.is_some() as usize);
            if let Some(w) = rw {
                w.wake();
            }
            if let Some(w) = ww {
                w.wake();
            }
        }
    }
}

/// Removes a waiter's own (stale) waker from its slot when its wait ends,
/// also when the wait unwinds (a kill), so no waker lingers.
struct WaiterSlot<'a> {
    reg: &'a Registration,
    dir: Dir,
}

impl WaiterSlot<'_> {
    fn clear(&mut self) {
        let Some(hub) = Hub::try_get() else { return };
        if hub.id != self.reg.hub_id {
            return;
        }
        let mine = {
            let mut sources = hub.reactor.sources.borrow_mut();
            let Some(s) = sources.get_mut(self.reg.key.get()) else {
                return;
            };
            let slot = match self.dir {
                Dir::Read => &mut s.reader,
                Dir::Write => &mut s.writer,
            };
            if slot.as_ref().is_some_and(Waker::is_stale) {
                slot.take()
            } else {
                None
            }
        };
        if mine.is_some() {
            hub.reactor.waiters.set(hub.reactor.waiters.get() - 1);
        }
    }
}

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

/// An fd registered with the current thread's reactor: the building block of
/// cooperative sockets.
///
/// Registered once, edge-triggered, for both directions; readiness starts as
/// "ready" so the first operation tries its syscall. At most one greenlet
/// may wait per direction: a second gets `ResourceBusy` (gevent's
/// ConcurrentObjectUseError). `!Send`: it belongs to its hub's thread.
pub struct Registration {
    /// Its slot in the reactor; `DETACHED` after `deregister`.
    key: Cell<usize>,
    fd: RawFd,
    /// The hub it is registered with; after `shutdown` a new hub may use
    /// the same key for another fd.
    hub_id: u64,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .finish()
    }
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
    /// The error of `epoll_ctl`, e.g. `EBADF` for an fd that is not open, or
    /// `EPERM` for a regular file (which is always ready; do not register).
    pub unsafe fn new(fd: RawFd) -> io::Result<Registration> {
        let hub = Hub::get();
        let r = &hub.reactor;
        let key = r.sources.borrow_mut().insert(Source::ready(fd));
        if let Err(e) = r.epoll.borrow().add(fd, key as u64) {
            r.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok(Registration {
            key: Cell::new(key),
            fd,
            hub_id: hub.id,
            _not_send: PhantomData,
        })
    }

    /// The registered fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    fn with<R>(&self, f: impl FnOnce(&mut Source) -> R) -> R {
        let hub = Hub::get();
        let mut sources = hub.reactor.sources.borrow_mut();
        match sources.get_mut(self.key.get()) {
            Some(s) if hub.id == self.hub_id => f(s),
            // Registered with a hub that was shut down: always "ready", so
            // operations go to their syscall; waits fail (see `wait`).
            _ => f(&mut Source::ready(self.fd)),
        }
    }

    fn check_hub(&self) -> io::Result<()> {
        if Hub::get().id == self.hub_id {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "fd {} was registered with a hub that has been shut down; make the socket again",
                    self.fd
                ),
            ))
        }
    }

    /// Whether the last known read readiness is "ready".
    pub fn is_readable(&self) -> bool {
        self.with(|s| s.readable)
    }

    /// Whether the last known write readiness is "ready".
    pub fn is_writable(&self) -> bool {
        self.with(|s| s.writable)
    }

    /// Forgets read readiness: the next read waits for the next edge. Call
    /// after `WouldBlock`, or after a short read on a stream socket. Does
    /// nothing once the read side has ended (FIN or hang-up seen): reads
    /// then return at once (0 or an error) and no further edge would come.
    #[inline]
    pub fn clear_readable(&self) {
        self.with(|s| s.readable = s.read_closed)
    }

    /// Forgets write readiness (after `WouldBlock` or a short write); does
    /// nothing once the fd hung up.
    #[inline]
    pub fn clear_writable(&self) {
        self.with(|s| s.writable = s.write_closed)
    }

    /// Waits until the fd is readable (returns at once if it is known to be).
    ///
    /// # Errors
    /// `TimedOut` ("timed out") after `timeout`; `ResourceBusy` if another
    /// greenlet already waits to read it; the `io::Error` of an
    /// [`Interrupted`] (a `Timeout` guard, `Cancelled` when the fd was closed
    /// or the wait cancelled by another greenlet, `LoopExit`).
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.wait(Dir::Read, deadline_within(timeout))
    }

    /// Waits until the fd is writable; as [`Registration::wait_readable`].
    ///
    /// # Errors
    /// As [`Registration::wait_readable`].
    pub fn wait_writable(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.wait(Dir::Write, deadline_within(timeout))
    }

    fn wait(&self, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
        self.check_hub()?;
        let hub = Hub::get();
        loop {
            let busy = self.with(|s| {
                let (ready, slot) = match dir {
                    Dir::Read => (s.readable, &s.reader),
                    Dir::Write => (s.writable, &s.writer),
                };
                if ready {
                    Ok(true)
                } else if slot.as_ref().is_some_and(|w| !w.is_stale()) {
                    Err(())
                } else {
                    Ok(false)
                }
            });
            match busy {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(()) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!(
                            "another greenlet is already waiting to {} fd {}",
                            if dir == Dir::Read { "read" } else { "write" },
                            self.fd
                        ),
                    ))
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            let mut timer = TimerGuard::new();
            let mut slot = WaiterSlot { reg: self, dir };
            let r = park(
                &format_args!(
                    "{} readiness of fd {}",
                    if dir == Dir::Read { "read" } else { "write" },
                    self.fd
                ),
                |w| {
                    if let Some(d) = deadline {
                        timer.arm(d, TimerAction::Wake(w.clone()));
                    }
                    let old = self.with(|s| match dir {
                        Dir::Read => s.reader.replace(w),
                        Dir::Write => s.writer.replace(w),
                    });
                    if old.is_none() {
                        hub.reactor.waiters.set(hub.reactor.waiters.get() + 1);
                    }
                },
            );
            drop(timer);
            slot.clear();
            r.map_err(io::Error::from)?;
        }
    }

    /// Runs the non-blocking read operation `op` until it does not return
    /// `WouldBlock`, waiting for read readiness in between (try-first: no
    /// wait when the fd is known to be readable).
    ///
    /// # Errors
    /// `op`'s own errors, and those of [`Registration::wait_readable`].
    #[inline]
    pub fn read_with<R>(
        &self,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline_within(timeout);
        loop {
            if self.is_readable() {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readable(),
                    r => return r,
                }
            }
            self.wait(Dir::Read, deadline)?;
        }
    }

    /// Runs the non-blocking write operation `op` until it does not return
    /// `WouldBlock`, waiting for write readiness in between.
    ///
    /// # Errors
    /// `op`'s own errors, and those of [`Registration::wait_writable`].
    #[inline]
    pub fn write_with<R>(
        &self,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline_within(timeout);
        loop {
            if self.is_writable() {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_writable(),
                    r => return r,
                }
            }
            match self.wait(Dir::Write, deadline) {
                // The writable edge comes only once about a third of the
                // send buffer is free: at the deadline, try once more, so a
                // slow but live peer still gets bytes (`SO_SNDTIMEO`'s rule:
                // time out only when nothing could be sent).
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
        if self.check_hub().is_err() {
            return;
        }
        let (r, w) = self.with(|s| (s.reader.take(), s.writer.take()));
        let hub = Hub::get();
        let n = r.is_some() as usize + w.is_some() as usize;
        hub.reactor.waiters.set(hub.reactor.waiters.get() - n);
        if let Some(r) = r {
            r.interrupt(reason.clone());
        }
        if let Some(w) = w {
            w.interrupt(reason);
        }
    }
}

/// The key of a registration that was deregistered (no slab has it).
const DETACHED: usize = usize::MAX;

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
        let key = self.key.replace(DETACHED);
        let Some(hub) = Hub::try_get() else { return };
        if key == DETACHED || hub.id != self.hub_id {
            return; // its hub is gone, and the registration with it
        }
        let source = hub.reactor.sources.borrow_mut().try_remove(key);
        if let Some(s) = source {
            // The contract of `Registration::new` keeps the fd open until
            // now, so this deletes our registration and nobody else's.
            let _ = hub.reactor.epoll.borrow().delete(s.fd);
            let n = s.reader.is_some() as usize + s.writer.is_some() as usize;
            hub.reactor.waiters.set(hub.reactor.waiters.get() - n);
            for w in [s.reader, s.writer].into_iter().flatten() {
                w.interrupt(Interrupted::Cancelled);
            }
        }
    }
}

impl Drop for Registration {
    /// Deregisters the fd and fails any waiter with `Cancelled`.
    fn drop(&mut self) {
        self.deregister();
    }
}
