//! [`Semaphore`], [`BoundedSemaphore`], [`Lock`] and [`RLock`].
//!
//! Permits are handed off in FIFO order: `release` gives its permit
//! directly to the longest waiter, so a greenlet that arrives later cannot
//! overtake it. A waiter killed after it was handed a permit passes the
//! permit on.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::waitlist::WaitList;
use crate::deadline::deadline_after;
use crate::hub::Hub;
use crate::interrupt::Interrupted;

struct SemInner {
    permits: Cell<usize>,
    /// Permits handed to waiters that have not run yet: they hold them,
    /// which `BoundedSemaphore::release` must count.
    handed: Cell<usize>,
    /// The initial count of a bounded semaphore.
    bound: Option<usize>,
    waiters: WaitList,
}

impl SemInner {
    #[inline]
    fn try_acquire(&self) -> bool {
        let n = self.permits.get();
        if n > 0 && self.waiters.is_empty() {
            self.permits.set(n - 1);
            true
        } else {
            false
        }
    }

    /// Inline up to the free case, so that an uncontended lock is a test
    /// and two writes; the wait is out of line.
    #[inline]
    fn acquire_until(
        self: &Rc<Self>,
        what: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        if self.try_acquire() {
            return Ok(true);
        }
        self.acquire_wait(what, deadline)
    }

    #[inline(never)]
    fn acquire_wait(
        self: &Rc<Self>,
        what: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        let me = self.clone();
        let left = self.waiters.wait(&what, (), deadline, move || {
            // Handed a permit, and gone before it ran: it passes on.
            me.handed.set(me.handed.get() - 1);
            me.release_one();
        })?;
        let got = left.is_none();
        if got {
            self.handed.set(self.handed.get() - 1);
        }
        Ok(got)
    }

    /// Gives a permit to the first waiter, or adds it to the count.
    #[inline]
    fn release_one(&self) {
        match self.waiters.pop() {
            Some((w, ())) => {
                self.handed.set(self.handed.get() + 1);
                w.wake();
            }
            None => self.permits.set(self.permits.get() + 1),
        }
    }
}

/// A counting semaphore (gevent's `Semaphore`): `acquire` takes a permit,
/// waiting while none is free; `release` returns one. Waiters are served
/// in FIFO order. Cloning gives another handle to the same semaphore.
///
/// ```
/// use greenlet_runtime::{spawn, sync::Semaphore};
///
/// let sem = Semaphore::new(2);
/// sem.acquire().unwrap();
/// sem.acquire().unwrap();
/// assert!(!sem.try_acquire());
/// let s = sem.clone();
/// spawn(move || s.release());
/// sem.acquire().unwrap(); // waits for the release
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Rc<SemInner>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::with_bound(permits, None)
    }

    fn with_bound(permits: usize, bound: Option<usize>) -> Semaphore {
        Semaphore {
            inner: Rc::new(SemInner {
                permits: Cell::new(permits),
                handed: Cell::new(0),
                bound,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Takes a permit, waiting for one.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted (no permit is taken).
    #[inline]
    pub fn acquire(&self) -> Result<(), Interrupted> {
        self.inner
            .acquire_until("Semaphore::acquire", None)
            .map(|_| ())
    }

    /// Takes a permit, waiting at most `timeout`; `Ok(false)` if none came.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        self.inner
            .acquire_until("Semaphore::acquire", deadline_after(timeout))
    }

    /// Takes a permit if one is free and nobody waits; never waits.
    pub fn try_acquire(&self) -> bool {
        self.inner.try_acquire()
    }

    /// Returns a permit: to the longest waiter if any (it runs later; this
    /// never switches), else to the count.
    #[inline]
    pub fn release(&self) {
        self.inner.release_one();
    }

    /// Free permits now.
    pub fn available(&self) -> usize {
        self.inner.permits.get()
    }

    /// Whether `acquire` would wait.
    pub fn locked(&self) -> bool {
        self.inner.permits.get() == 0 || !self.inner.waiters.is_empty()
    }

    /// Number of greenlets waiting.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// `release` on a [`BoundedSemaphore`] that already has all its permits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("BoundedSemaphore released too many times (it holds all {0} permits)")]
pub struct OverReleased(pub usize);

/// A semaphore that refuses to hold more permits than it started with
/// (gevent's `BoundedSemaphore`): releasing one too many is an error.
#[derive(Clone, Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` free permits (its bound).
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::with_bound(permits, Some(permits)),
        }
    }

    /// As [`Semaphore::acquire`].
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub fn acquire(&self) -> Result<(), Interrupted> {
        self.sem.acquire()
    }

    /// As [`Semaphore::acquire_timeout`].
    ///
    /// # Errors
    /// As [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        self.sem.acquire_timeout(timeout)
    }

    /// As [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// Returns a permit.
    ///
    /// # Errors
    /// [`OverReleased`] if it already holds all its permits (nothing
    /// changes).
    pub fn release(&self) -> Result<(), OverReleased> {
        let inner = &self.sem.inner;
        let bound = inner.bound.unwrap_or(usize::MAX);
        // Nobody holds a permit when every one is free or handed to a
        // waiter that has not run yet.
        if inner.permits.get() + inner.handed.get() >= bound {
            return Err(OverReleased(bound));
        }
        inner.release_one();
        Ok(())
    }

    /// Free permits now.
    pub fn available(&self) -> usize {
        self.sem.available()
    }

    pub(super) fn as_semaphore(&self) -> &Semaphore {
        &self.sem
    }
}

/// A mutual-exclusion lock for greenlets (gevent's `Lock`): `lock` returns
/// a guard that unlocks when dropped. Waiters are served in FIFO order.
/// Holding it across a blocking call is what it is for; the thread is
/// never blocked. Cloning gives another handle to the same lock.
///
/// ```
/// use greenlet_runtime::sync::Lock;
///
/// let lock = Lock::new();
/// {
///     let _held = lock.lock().unwrap();
///     assert!(lock.locked());
///     assert!(lock.try_lock().is_none());
/// }
/// assert!(!lock.locked());
/// ```
#[derive(Clone)]
pub struct Lock {
    sem: Semaphore,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

/// Holds a [`Lock`] (or [`RLock`]); unlocks when dropped, also when the
/// holder unwinds (a panic or a kill).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    of: GuardOf<'a>,
}

enum GuardOf<'a> {
    Lock(&'a Semaphore),
    RLock(&'a RLock),
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        match self.of {
            GuardOf::Lock(sem) => sem.release(),
            GuardOf::RLock(r) => r.unlock(),
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Lock {
        Lock {
            sem: Semaphore::new(1),
        }
    }

    /// Locks, waiting while another greenlet holds it.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted (the lock is not taken).
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>, Interrupted> {
        self.sem.acquire()?;
        Ok(self.guard())
    }

    /// Locks, waiting at most `timeout`; `Ok(None)` if it stayed locked.
    ///
    /// # Errors
    /// As [`Lock::lock`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>, Interrupted> {
        Ok(self.sem.acquire_timeout(timeout)?.then(|| self.guard()))
    }

    /// Locks if free; never waits.
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.sem.try_acquire().then(|| self.guard())
    }

    /// Whether it is held (or has waiters).
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    fn guard(&self) -> LockGuard<'_> {
        LockGuard {
            of: GuardOf::Lock(&self.sem),
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// A reentrant lock (gevent's `RLock`): the greenlet holding it may lock it
/// again; it is released when every guard is dropped.
#[derive(Clone)]
pub struct RLock {
    inner: Rc<RLockInner>,
}

struct RLockInner {
    sem: Semaphore,
    owner: Cell<Option<u64>>,
    depth: Cell<usize>,
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl RLock {
    /// An unlocked reentrant lock.
    pub fn new() -> RLock {
        RLock {
            inner: Rc::new(RLockInner {
                sem: Semaphore::new(1),
                owner: Cell::new(None),
                depth: Cell::new(0),
            }),
        }
    }

    /// Locks (again, if the current greenlet holds it).
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn lock(&self) -> Result<LockGuard<'_>, Interrupted> {
        let me = Hub::with(|hub| hub.current().core().id());
        let i = &self.inner;
        if i.owner.get() != Some(me) {
            i.sem.acquire()?;
            i.owner.set(Some(me));
        }
        i.depth.set(i.depth.get() + 1);
        Ok(LockGuard {
            of: GuardOf::RLock(self),
        })
    }

    /// Whether some greenlet holds it.
    pub fn locked(&self) -> bool {
        self.inner.owner.get().is_some()
    }

    fn unlock(&self) {
        let i = &self.inner;
        let d = i.depth.get() - 1;
        i.depth.set(d);
        if d == 0 {
            i.owner.set(None);
            i.sem.release();
        }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.inner.owner.get())
            .field("depth", &self.inner.depth.get())
            .finish()
    }
}
