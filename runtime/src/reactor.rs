//! The reactor: readiness of file descriptors, on `epoll` (see `epoll.rs`).
//!
//! Each fd is registered once, edge-triggered, for read and write, as a
//! [`Source`]: per direction a readiness flag and at most one waiter. I/O
//! is try-first: an operation runs its non-blocking syscall and parks only
//! on `WouldBlock`, which consumes the readiness flag; the next edge sets
//! it again. `epoll_wait` runs at most once per loop turn, never per
//! operation, and no `epoll_ctl` happens after registration.
//!
//! Plain state: the hub owns the reactor; a `Registration` (the handle)
//! holds its source, so asking about readiness is a field read.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::epoll::{Epoll, Notifier, Ready, NOTIFY_KEY};
use crate::task::Waker;

/// Capacity of the events buffer filled by one `epoll_wait`.
const EVENTS: usize = 1024;

/// A direction of readiness: what an I/O operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Readable (or at end of file, hung up, or in error).
    Read = 0,
    /// Writable (or hung up, or in error).
    Write = 1,
}

impl Direction {
    /// "read" or "write", for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

/// One direction of a [`Source`].
#[derive(Default)]
struct DirState {
    /// The last known readiness (an edge sets it, `WouldBlock` clears it).
    ready: Cell<bool>,
    /// Sticky: this side has ended (FIN or hang-up for reads, hang-up for
    /// writes), so clearing readiness would park a waiter that no edge will
    /// ever wake (the FIN may have come in the same event as the data a
    /// short read took).
    closed: Cell<bool>,
    /// The greenlet waiting for this direction, if any.
    waiter: Cell<Option<Waker>>,
}

impl DirState {
    fn ready() -> DirState {
        DirState {
            ready: Cell::new(true),
            ..DirState::default()
        }
    }

    /// Whether a waiter is parked here whose wait has not ended.
    fn busy(&self) -> bool {
        let w = self.waiter.take();
        let busy = w.as_ref().is_some_and(|w| !w.is_stale());
        self.waiter.set(w);
        busy
    }

    /// Takes the waiter if its wait has ended.
    fn take_stale(&self) -> Option<Waker> {
        let w = self.waiter.take();
        if w.as_ref().is_some_and(|w| !w.is_stale()) {
            self.waiter.set(w);
            None
        } else {
            w
        }
    }
}

/// One registered fd: its readiness and waiters, shared by the reactor
/// (which sets readiness and wakes) and the fd's `Registration`.
pub(crate) struct Source {
    fd: RawFd,
    key: usize,
    /// Still in its reactor. Out of it (deregistered, or its hub gone) a
    /// source is ready both ways for good, so operations go to their
    /// syscall and waits return at once.
    attached: Cell<bool>,
    /// Its hub was shut down: waits on it fail instead (the socket must be
    /// made again for the new hub).
    hub_gone: Cell<bool>,
    dirs: [DirState; 2],
}

impl Source {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn is_attached(&self) -> bool {
        self.attached.get()
    }

    /// Whether the hub it was registered with has been shut down.
    pub(crate) fn is_orphaned(&self) -> bool {
        self.hub_gone.get()
    }

    /// The last known readiness of `dir`.
    #[inline]
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.dirs[dir as usize].ready.get()
    }

    /// Forgets `dir`'s readiness, unless that side has ended.
    #[inline]
    pub(crate) fn clear_ready(&self, dir: Direction) {
        let d = &self.dirs[dir as usize];
        d.ready.set(d.closed.get());
    }

    /// Whether another greenlet waits for `dir`.
    pub(crate) fn is_busy(&self, dir: Direction) -> bool {
        self.dirs[dir as usize].busy()
    }

    /// Out of its reactor for good: ready both ways, no waiters.
    fn detach(&self) -> [Option<Waker>; 2] {
        self.attached.set(false);
        self.dirs.each_ref().map(|d| {
            d.ready.set(true);
            d.closed.set(true);
            d.waiter.take()
        })
    }
}

pub(crate) struct Reactor {
    /// Replaced in a forked child (`reinit`): the parent's epoll instance
    /// and eventfd are shared with it and must not be touched.
    epoll: RefCell<Epoll>,
    notifier: RefCell<Arc<Notifier>>,
    sources: RefCell<Slab<Rc<Source>>>,
    /// The `epoll_wait` buffer and the decoded events (kept to reuse their
    /// allocations).
    events: RefCell<(Vec<libc::epoll_event>, Vec<Ready>)>,
    /// Waiters parked in `sources` (for the deadlock check). Counted only
    /// where a waiter is put in or taken out: `set_waiter`, `take_waiter`
    /// and `take_all_waiters`.
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

    /// Registers `fd`; it starts ready both ways, so the first operation
    /// tries its syscall.
    ///
    /// # Errors
    /// The error of `epoll_ctl` (`EBADF`, `EPERM` for a regular file).
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Rc<Source>> {
        let mut sources = self.sources.borrow_mut();
        let entry = sources.vacant_entry();
        let source = Rc::new(Source {
            fd,
            key: entry.key(),
            attached: Cell::new(true),
            hub_gone: Cell::new(false),
            dirs: [DirState::ready(), DirState::ready()],
        });
        self.epoll.borrow().add(fd, source.key as u64)?;
        entry.insert(source.clone());
        Ok(source)
    }

    /// Deregisters `source` and returns its waiters (to be failed by the
    /// caller after this borrow).
    pub(crate) fn deregister(&self, source: &Source) -> [Option<Waker>; 2] {
        if !source.is_attached() {
            return [None, None];
        }
        let removed = self.sources.borrow_mut().try_remove(source.key);
        // The fd is still open (the `Registration` contract), so this
        // deletes our registration and nobody else's.
        let _ = self.epoll.borrow().delete(source.fd);
        let waiters = source.detach();
        self.count_out(&waiters);
        drop(removed);
        waiters
    }

    /// Parks `w` as `source`'s waiter for `dir`.
    pub(crate) fn set_waiter(&self, source: &Source, dir: Direction, w: Waker) {
        if source.dirs[dir as usize].waiter.replace(Some(w)).is_none() {
            self.waiters.set(self.waiters.get() + 1);
        }
    }

    /// Takes `source`'s waiter for `dir` if its wait has ended (a waiter
    /// clearing its own slot when its wait ends, also by a kill).
    pub(crate) fn take_stale_waiter(&self, source: &Source, dir: Direction) -> Option<Waker> {
        let w = source.dirs[dir as usize].take_stale();
        self.count_out(std::slice::from_ref(&w));
        w
    }

    /// Takes both of `source`'s waiters.
    pub(crate) fn take_waiters(&self, source: &Source) -> [Option<Waker>; 2] {
        let w = source.dirs.each_ref().map(|d| d.waiter.take());
        self.count_out(&w);
        w
    }

    fn count_out(&self, taken: &[Option<Waker>]) {
        let n = taken.iter().filter(|w| w.is_some()).count();
        self.waiters.set(self.waiters.get() - n);
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
        let sources: Vec<Rc<Source>> = self
            .sources
            .borrow()
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        let mut gone = Vec::new();
        for s in &sources {
            for dir in [Direction::Read, Direction::Write] {
                gone.extend(self.take_stale_waiter(s, dir));
            }
        }
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
            let source = match self.sources.borrow().get(r.key as usize) {
                Some(s) => s.clone(),
                None => continue,
            };
            let edges = [
                (Direction::Read, r.readable, r.read_closed),
                (Direction::Write, r.writable, r.write_closed),
            ];
            for (dir, ready, closed) in edges {
                let d = &source.dirs[dir as usize];
                d.ready.set(d.ready.get() | ready);
                d.closed.set(d.closed.get() | closed);
                if ready {
                    if let Some(w) = d.waiter.take() {
                        self.waiters.set(self.waiters.get() - 1);
                        w.wake();
                    }
                }
            }
        }
    }

    /// Detaches every source (the hub is going away): their registrations
    /// see them ready for good and their waits fail.
    pub(crate) fn detach_all(&self) {
        let sources: Vec<Rc<Source>> = self.sources.borrow_mut().drain().collect();
        let mut waiters = Vec::new();
        for s in sources {
            s.hub_gone.set(true);
            let w = s.detach();
            self.count_out(&w);
            waiters.extend(w);
        }
        drop(waiters);
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;
    use crate::task::Rec;

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        // SAFETY: both fds are fresh and owned by nothing else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// A waker of a greenlet record (never run) that is `parked` or not.
    fn waker(parked: bool) -> Waker {
        let rec = Rec::idle(1);
        if parked {
            rec.core().mark_parked();
        }
        Waker::for_park(rec)
    }

    #[test]
    fn an_edge_sets_readiness_and_takes_the_waiter() {
        let r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let s = r.register(rd.as_raw_fd()).unwrap();
        assert!(s.is_ready(Direction::Read) && s.is_ready(Direction::Write));
        s.clear_ready(Direction::Read);
        assert!(!s.is_ready(Direction::Read));
        r.set_waiter(&s, Direction::Read, waker(true));
        assert!(s.is_busy(Direction::Read));
        assert_eq!(r.waiters(), 1);
        // SAFETY: writes one byte from a valid buffer to our pipe.
        let n = unsafe { libc::write(wr.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, 1);
        r.poll(Some(Duration::from_secs(5)));
        assert!(s.is_ready(Direction::Read));
        assert!(!s.is_busy(Direction::Read));
        assert_eq!(r.waiters(), 0);
        assert_eq!(r.deregister(&s).iter().flatten().count(), 0);
    }

    #[test]
    fn a_side_that_ended_stays_ready() {
        let r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let s = r.register(rd.as_raw_fd()).unwrap();
        s.clear_ready(Direction::Read);
        drop(wr); // hang-up: reads return 0 from now on
        r.poll(Some(Duration::from_secs(5)));
        s.clear_ready(Direction::Read);
        assert!(
            s.is_ready(Direction::Read),
            "no edge would ever wake a reader"
        );
        r.deregister(&s);
    }

    #[test]
    fn a_stale_waiter_is_not_busy_and_its_own_wait_takes_it() {
        let r = Reactor::new().unwrap();
        let (rd, _wr) = pipe();
        let s = r.register(rd.as_raw_fd()).unwrap();
        r.set_waiter(&s, Direction::Write, waker(false));
        assert!(!s.is_busy(Direction::Write), "its park already ended");
        assert!(r.take_stale_waiter(&s, Direction::Write).is_some());
        assert_eq!(r.waiters(), 0);
        r.set_waiter(&s, Direction::Write, waker(true));
        assert!(r.take_stale_waiter(&s, Direction::Write).is_none(), "live");
        assert_eq!(r.take_waiters(&s).iter().flatten().count(), 1);
        assert_eq!(r.waiters(), 0);
        r.deregister(&s);
    }

    #[test]
    fn a_detached_source_is_ready_for_good_and_gives_up_its_waiters() {
        let r = Reactor::new().unwrap();
        let (rd, _wr) = pipe();
        let s = r.register(rd.as_raw_fd()).unwrap();
        s.clear_ready(Direction::Read);
        r.set_waiter(&s, Direction::Read, waker(true));
        r.detach_all();
        assert!(!s.is_attached());
        assert_eq!(r.waiters(), 0);
        s.clear_ready(Direction::Read);
        assert!(s.is_ready(Direction::Read) && s.is_ready(Direction::Write));
        assert_eq!(r.deregister(&s).iter().flatten().count(), 0, "already out");
    }
}
