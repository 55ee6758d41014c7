//! The reactor: readiness of file descriptors, on one `polling::Poller`
//! per hub.
//!
//! Each fd is registered once, edge-triggered, for read and write, as a
//! [`Source`]: per direction a readiness flag and at most one waiter. I/O
//! is try-first: an operation runs its non-blocking syscall and parks only
//! on `WouldBlock`, which consumes the readiness flag; the next edge sets
//! it again. The poller is waited on at most once per loop turn, never per
//! operation, and no registration changes after it is made.
//!
//! Two ways to wait, one poller: on Linux the fast path (`epoll.rs`) calls
//! `epoll_wait` on the poller's own epoll instance (one syscall instead of
//! `Poller::wait`'s five) and registers with `EPOLLRDHUP`; elsewhere, or
//! with `GREENLET_REACTOR=polling`, everything goes through `polling`'s API
//! (CI runs the test suite both ways). Cross-thread wake-ups are
//! `Poller::notify` either way.
//!
//! Plain state: the hub owns the reactor; a `Registration` (the handle)
//! holds its source, so asking about readiness is a field read.

use std::cell::{Cell, RefCell};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};
use slab::Slab;

use crate::task::Waker;

/// Capacity of the events buffer filled by one wait.
const EVENTS: usize = 1024;

/// The environment variable that selects the reactor's backend on Linux:
/// `polling` (everything through the `polling` crate's API) or `epoll`
/// (the default: the fast path of `epoll.rs`). Elsewhere only `polling`
/// exists and the variable is ignored.
pub(crate) const REACTOR_ENV: &str = "GREENLET_REACTOR";

/// Whether hubs use the Linux fast path (read once per process).
fn fast_path() -> bool {
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        let choice = std::env::var(REACTOR_ENV).unwrap_or_default();
        match choice.as_str() {
            "" | "epoll" => cfg!(target_os = "linux"),
            "polling" => false,
            other => {
                log::warn!(
                    "{REACTOR_ENV}={other:?} is not a reactor backend \
                     (\"epoll\" or \"polling\"); using the default"
                );
                cfg!(target_os = "linux")
            }
        }
    })
}

/// Readiness reported for one key by a wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The read side is finished for good (peer's FIN or hang-up): reads
    /// never block again.
    pub(crate) read_closed: bool,
    /// Hung up: writes never block again.
    pub(crate) write_closed: bool,
    /// The backend would have reported the end of the read side in this
    /// event (`EPOLLRDHUP`): if `read_closed` is false, the read side is
    /// still open. False for events that came through `polling`'s API,
    /// which cannot ask for `EPOLLRDHUP` and on kqueue folds `EV_EOF` into
    /// readiness.
    pub(crate) end_known: bool,
}

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
///
/// One cache line, aligned (a test checks its size): the reactor's wake and
/// the woken greenlet's operation both read and write most of it, usually
/// after a pass over every other connection has pushed it out of the
/// cache; as a plain `Rc` allocation it straddled two lines.
#[repr(align(64))]
pub(crate) struct Source {
    fd: RawFd,
    /// What the poller reports its events under: its key in the reactor's
    /// slab (low 32 bits) and the reactor's count of registrations at its
    /// own (high 32 bits, 64-bit targets). An event whose token is not the
    /// source's now is dropped: an epoll entry left behind (an fd closed
    /// while another copy of its file lives on cannot be deleted) must not
    /// pass its readiness to the next fd given the same slab key.
    token: u64,
    /// Still in its reactor. Out of it (deregistered, or its hub gone) a
    /// source is ready both ways for good, so operations go to their
    /// syscall and waits return at once.
    attached: Cell<bool>,
    /// Its hub was shut down: waits on it fail instead (the socket must be
    /// made again for the new hub).
    hub_gone: Cell<bool>,
    /// The last read edge said whether the read side had ended (see
    /// [`Ready::end_known`]), so a short read may clear read readiness.
    read_end_known: Cell<bool>,
    dirs: [DirState; 2],
}

impl Source {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Its key in the reactor's slab (the low half of its token).
    fn key(&self) -> usize {
        self.token as u32 as usize
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

    /// After a short read (write) on a stream socket: forgets `dir`'s
    /// readiness where that is safe. A short read may have taken the data
    /// that came with the peer's FIN in one edge; no later edge would come,
    /// so read readiness is kept (and the next read finds the end, or
    /// `EAGAIN`) unless the edge said the read side was still open.
    #[inline]
    pub(crate) fn clear_ready_after_short(&self, dir: Direction) {
        if dir == Direction::Write || self.read_end_known.get() {
            self.clear_ready(dir);
        }
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
    /// and notifier are shared with it and must not be touched.
    poller: RefCell<Arc<Poller>>,
    /// Waits with `epoll.rs` instead of `Poller::wait` (Linux).
    fast: bool,
    sources: RefCell<Slab<Rc<Source>>>,
    /// The wait buffers and the decoded events (kept to reuse their
    /// allocations).
    events: RefCell<Buffers>,
    /// Waiters parked in `sources` (for the deadlock check). Counted only
    /// where a waiter is put in or taken out: `set_waiter`, `take_waiter`
    /// and `take_all_waiters`.
    waiters: Cell<usize>,
    /// Registrations made, for the high half of each `Source::token`.
    registered: Cell<u32>,
}

struct Buffers {
    /// For `Poller::wait`.
    events: Events,
    /// For the fast path's `epoll_wait`.
    #[cfg(target_os = "linux")]
    raw: Vec<libc::epoll_event>,
    ready: Vec<Ready>,
}

impl Reactor {
    /// A reactor on the backend `GREENLET_REACTOR` selects.
    pub(crate) fn new() -> io::Result<Reactor> {
        Reactor::with_fast_path(fast_path())
    }

    /// A reactor that waits with `epoll.rs` (`fast`, Linux only) or with
    /// `Poller::wait`.
    fn with_fast_path(fast: bool) -> io::Result<Reactor> {
        let fast = fast && cfg!(target_os = "linux");
        Ok(Reactor {
            poller: RefCell::new(Arc::new(Poller::new()?)),
            fast,
            sources: RefCell::new(Slab::new()),
            registered: Cell::new(0),
            events: RefCell::new(Buffers {
                events: Events::with_capacity(NonZeroUsize::new(EVENTS).expect("not zero")),
                #[cfg(target_os = "linux")]
                raw: if fast {
                    crate::epoll::buffer(EVENTS)
                } else {
                    Vec::new()
                },
                ready: Vec::with_capacity(EVENTS),
            }),
            waiters: Cell::new(0),
        })
    }

    /// The poller, for waking this reactor's wait from any thread
    /// (`Poller::notify`).
    pub(crate) fn notifier(&self) -> Arc<Poller> {
        self.poller.borrow().clone()
    }

    /// Whether no fd is registered: a poll could only report a notify,
    /// which the hub learns from its queues' own flags.
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.borrow().is_empty()
    }

    /// Registers `fd`; it starts ready both ways, so the first operation
    /// tries its syscall.
    ///
    /// # Errors
    /// The error of the registration (`EBADF`; `EPERM` for a regular file
    /// on Linux; `EEXIST` if the fd is registered already).
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Rc<Source>> {
        let mut sources = self.sources.borrow_mut();
        let entry = sources.vacant_entry();
        let key = u32::try_from(entry.key())
            .map_err(|_| io::Error::other("more than 2^32 fds registered with one hub"))?;
        let n = self.registered.get().wrapping_add(1);
        self.registered.set(n);
        let token = if usize::BITS >= 64 {
            u64::from(n) << 32 | u64::from(key)
        } else {
            u64::from(key) // the poller's keys are one `usize`
        };
        let source = Rc::new(Source {
            fd,
            token,
            attached: Cell::new(true),
            hub_gone: Cell::new(false),
            read_end_known: Cell::new(self.fast),
            dirs: [DirState::ready(), DirState::ready()],
        });
        self.add(&self.poller.borrow(), fd, source.token)?;
        entry.insert(source.clone());
        Ok(source)
    }

    /// Adds `fd` to `poller`, edge-triggered, both directions.
    fn add(&self, poller: &Poller, fd: RawFd, token: u64) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.fast {
            use std::os::fd::AsRawFd;
            return crate::epoll::add(poller.as_raw_fd(), fd, token);
        }
        // Lossless: a token is one `usize` wide (see `register`).
        let key = token as usize;
        // SAFETY: the `Registration` contract keeps `fd` open until it is
        // deleted (`deregister`), or until the reactor is dropped with it.
        unsafe { poller.add_with_mode(fd, Event::all(key).with_interrupt(), PollMode::Edge) }
    }

    /// Deregisters `source` and returns its waiters (to be failed by the
    /// caller after this borrow).
    pub(crate) fn deregister(&self, source: &Source) -> [Option<Waker>; 2] {
        if !source.is_attached() {
            return [None, None];
        }
        let removed = self.sources.borrow_mut().try_remove(source.key());
        // SAFETY: the fd is still open (the `Registration` contract), so
        // this deletes our registration and nobody else's.
        let fd = unsafe { BorrowedFd::borrow_raw(source.fd) };
        let _ = self.poller.borrow().delete(fd);
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

    /// In a forked child: a new poller, with every registered fd added
    /// again. Returns it (for the remote queue and signal handlers) and the
    /// parent's, for [`forget_inherited`] once nothing can use it.
    pub(crate) fn reinit(&self) -> io::Result<(Arc<Poller>, Arc<Poller>)> {
        let poller = Arc::new(Poller::new()?);
        for s in self.sources.borrow().iter().map(|(_, s)| s) {
            // A source whose fd was closed meanwhile just fails here.
            let _ = self.add(&poller, s.fd, s.token);
        }
        let old = std::mem::replace(&mut *self.poller.borrow_mut(), poller.clone());
        Ok((poller, old))
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
        let mut bufs = self.events.borrow_mut();
        let bufs = &mut *bufs;
        bufs.ready.clear();
        let poller = self.poller.borrow();
        if let Err(e) = self.wait(&poller, bufs, timeout) {
            log::error!("polling for I/O readiness failed: {e}");
            return;
        }
        drop(poller);
        // Borrowed, not cloned: a clone would write the `Rc`'s count, in
        // a cache line of its own (`Source` is aligned), at every wake.
        // Waking only queues the greenlet, so nothing here registers.
        let sources = self.sources.borrow();
        for r in bufs.ready.iter() {
            let Some(source) = sources.get(r.key as u32 as usize) else {
                continue;
            };
            if source.token != r.key {
                continue; // an entry left behind by an fd since closed
            }
            if r.readable {
                source.read_end_known.set(r.end_known);
            }
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

    /// Fills `bufs.ready` with what one wait reports.
    fn wait(
        &self,
        poller: &Poller,
        bufs: &mut Buffers,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.fast {
            use std::os::fd::AsRawFd;
            crate::epoll::wait(poller.as_raw_fd(), &mut bufs.raw, timeout, &mut bufs.ready)?;
            let notified = bufs.ready.len();
            bufs.ready.retain(|r| r.key != crate::epoll::NOTIFY_KEY);
            if bufs.ready.len() == notified {
                return Ok(());
            }
            // Let `polling` drain and re-arm its notifier (and reset its
            // flag, so the next `notify` writes again). This may report
            // edges too, without the read side's end.
            return Self::wait_polling(poller, bufs, Some(Duration::ZERO));
        }
        Self::wait_polling(poller, bufs, timeout)
    }

    /// One `Poller::wait`, appended to `bufs.ready`.
    fn wait_polling(
        poller: &Poller,
        bufs: &mut Buffers,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        bufs.events.clear();
        poller.wait(&mut bufs.events, timeout)?;
        for ev in bufs.events.iter() {
            // Hung up (epoll, poll); kqueue reports no such thing, and
            // reads and writes then find the end themselves.
            let hup = ev.is_interrupt();
            bufs.ready.push(Ready {
                key: ev.key as u64,
                readable: ev.readable,
                writable: ev.writable,
                read_closed: hup,
                write_closed: hup,
                end_known: false,
            });
        }
        Ok(())
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

/// Gives up a forked child's copy of the parent's poller, never dropping
/// it: `Poller`'s drop deletes its notifier from the epoll instance, which
/// the child shares with the parent (the parent would never be woken
/// again). With `close` (right after `fork` only: see
/// [`crate::epoll::close_inherited`]), the child's copies of its three fds
/// are closed on Linux; without, they stay open in the child, as they do on
/// other systems, where a child does not inherit a kqueue.
pub(crate) fn forget_inherited(old: Arc<Poller>, close: bool) {
    #[cfg(target_os = "linux")]
    if close {
        use std::os::fd::AsRawFd;
        // SAFETY: `close` is only passed right after `fork` (the caller's
        // word), and `old` is forgotten below, never used again.
        unsafe { crate::epoll::close_inherited(old.as_raw_fd()) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = close;
    std::mem::forget(old);
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;
    use crate::task::Rec;

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe writes (`pipe2` is
        // not on macOS).
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        for fd in fds {
            // SAFETY: fcntl on a pipe end just made.
            let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        }
        // SAFETY: both fds are fresh and owned by nothing else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// A reactor of each backend this OS has.
    fn reactors() -> Vec<Reactor> {
        let mut all = vec![Reactor::with_fast_path(false).unwrap()];
        if cfg!(target_os = "linux") {
            all.push(Reactor::with_fast_path(true).unwrap());
        }
        all
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
        for r in reactors() {
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
    }

    /// An epoll entry left behind (its fd closed before the delete, while
    /// another copy of its file lives on) reports under its old token; the
    /// fd registered next under the same slab key is not woken by it.
    #[test]
    fn an_entry_left_behind_does_not_wake_the_next_source_of_its_key() {
        for r in reactors() {
            let (rd, wr) = pipe();
            // SAFETY: plain syscall on our own open fd.
            let dup = unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
            assert!(dup >= 0, "{}", io::Error::last_os_error());
            // SAFETY: a fresh fd that nothing else owns.
            let dup = unsafe { OwnedFd::from_raw_fd(dup) };
            let old = r.register(dup.as_raw_fd()).unwrap();
            let old_key = old.key();
            drop(dup); // closed first: the delete below cannot find it
            r.deregister(&old);
            let (other_rd, _other_wr) = pipe();
            let new = r.register(other_rd.as_raw_fd()).unwrap();
            assert_eq!(new.key(), old_key, "the slab reuses the key");
            new.clear_ready(Direction::Read);
            r.set_waiter(&new, Direction::Read, waker(true));
            // SAFETY: writes one byte from a valid buffer to our pipe.
            let n = unsafe { libc::write(wr.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            assert_eq!(n, 1);
            r.poll(Some(Duration::from_millis(100)));
            assert!(
                !new.is_ready(Direction::Read) && new.is_busy(Direction::Read),
                "another file's edge woke it"
            );
            assert_eq!(r.take_waiters(&new).iter().flatten().count(), 1);
            r.deregister(&new);
        }
    }

    #[test]
    fn a_side_that_ended_stays_ready() {
        for r in reactors() {
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
    }

    #[test]
    fn a_stale_waiter_is_not_busy_and_its_own_wait_takes_it() {
        for r in reactors() {
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
    }

    #[test]
    fn a_detached_source_is_ready_for_good_and_gives_up_its_waiters() {
        for r in reactors() {
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

    #[test]
    fn a_notify_from_another_thread_ends_a_blocking_poll_every_time() {
        for r in reactors() {
            let (rd, _wr) = pipe();
            let s = r.register(rd.as_raw_fd()).unwrap();
            for _ in 0..3 {
                let poller = r.notifier();
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    poller.notify().unwrap();
                });
                let start = std::time::Instant::now();
                r.poll(Some(Duration::from_secs(60)));
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the notify did not end the poll (fast path: {})",
                    r.fast
                );
                t.join().unwrap();
                // Drained and re-armed: with nothing pending the next poll
                // waits out its timeout instead of returning at once.
                let start = std::time::Instant::now();
                r.poll(Some(Duration::from_millis(50)));
                assert!(
                    start.elapsed() >= Duration::from_millis(45),
                    "the notification was not drained (fast path: {})",
                    r.fast
                );
            }
            r.deregister(&s);
        }
    }

    #[test]
    fn a_source_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Source>(), 64);
    }

    #[test]
    fn a_short_read_clears_read_readiness_only_where_an_end_would_be_reported() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        for r in reactors() {
            let (mut a, b) = UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            let s = r.register(b.as_raw_fd()).unwrap();
            s.clear_ready(Direction::Read);
            a.write_all(b"data").unwrap();
            r.poll(Some(Duration::from_secs(5)));
            s.clear_ready_after_short(Direction::Read);
            // The fast path's edge said the read side is open; polling's
            // cannot say, so the next read must look.
            assert_eq!(s.is_ready(Direction::Read), !r.fast);

            s.clear_ready(Direction::Read);
            a.write_all(b"more").unwrap();
            a.shutdown(std::net::Shutdown::Write).unwrap();
            r.poll(Some(Duration::from_secs(5)));
            s.clear_ready_after_short(Direction::Read);
            assert!(
                s.is_ready(Direction::Read),
                "data and the end in one edge: a reader must not park (fast path: {})",
                r.fast
            );
            r.deregister(&s);
        }
    }
}
