//! [`Queue`] (bounded or unbounded) and [`Channel`] (rendezvous).
//!
//! Items are handed off: a `put` with getters waiting gives its item to the
//! longest-waiting getter, and a `get` from a full bounded queue moves the
//! longest-waiting putter's item in. So getters and putters are each served
//! in FIFO order and an interrupted wait never loses an item: an
//! interrupted `put` gives its item back in the error.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::waitlist::WaitList;
use crate::deadline::deadline_after;
use crate::interrupt::Interrupted;

/// Where a waiting getter receives its item, or a waiting putter keeps its
/// item until a getter takes it: a cell in the waiter's own frame
/// (`get_until`, `put_until`), which its wait-list entry points at. (A
/// shared heap cell per wait was a third of a hand-off's instructions.)
///
/// Valid while its entry is in the list: a waiter's entry is there only
/// while its `WaitList::wait` call runs (a notifier removes it, or the
/// waiter does before `wait` returns or unwinds), and the cell is in a
/// frame around that call. So whoever pops an entry may use its slot,
/// at once, before anything can switch.
struct Slot<T>(NonNull<Cell<Option<T>>>);

impl<T> Slot<T> {
    fn of(cell: &Cell<Option<T>>) -> Slot<T> {
        Slot(NonNull::from(cell))
    }

    /// Hands `item` to the getter whose entry was just popped.
    fn give(self, item: T) {
        // SAFETY: popped from its list just now, so its waiter is still
        // inside `wait` and the cell alive (see the type); no reference
        // to the cell is held across this call.
        unsafe { self.0.as_ref() }.set(Some(item));
    }

    /// Takes the item of the putter whose entry was just popped.
    fn take(self) -> Option<T> {
        // SAFETY: as in `give`.
        unsafe { self.0.as_ref() }.take()
    }
}

struct Inner<T> {
    items: RefCell<VecDeque<T>>,
    /// `None`: unbounded; `Some(0)`: a rendezvous channel.
    cap: Option<usize>,
    getters: WaitList<Slot<T>>,
    putters: WaitList<Slot<T>>,
}

/// `try_get` on an empty queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the queue is empty")]
pub struct Empty;

/// Why a `put` did not complete; the item comes back in it.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue was full (`try_put`, or `put_timeout` that timed out).
    #[error("the queue is full")]
    Full(T),
    /// The wait was interrupted (a timeout of the putting greenlet, ...).
    #[error("putting into the queue was interrupted: {0}")]
    Interrupted(Interrupted, T),
}

impl<T> PutError<T> {
    /// The interruption if this is [`PutError::Interrupted`].
    pub fn interrupted(&self) -> Option<&Interrupted> {
        match self {
            PutError::Interrupted(i, _) => Some(i),
            PutError::Full(_) => None,
        }
    }

    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Interrupted(_, t) => t,
        }
    }
}

impl<T> From<PutError<T>> for std::io::Error {
    /// `Interrupted` converts as [`Interrupted`] does; `Full` becomes
    /// `WouldBlock`. The item is dropped: take it first with
    /// [`PutError::into_inner`] if you need it.
    fn from(e: PutError<T>) -> std::io::Error {
        match e {
            PutError::Interrupted(i, _) => i.into(),
            PutError::Full(_) => {
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "the queue is full")
            }
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Interrupted(e, _) => write!(f, "Interrupted({e:?}, ..)"),
        }
    }
}

/// A FIFO queue between greenlets (gevent's `Queue`), unbounded or with a
/// capacity. Cloning gives another handle to the same queue.
///
/// ```
/// use greenlet_runtime::{spawn, sync::Queue};
///
/// let q = Queue::bounded(2);
/// let producer = {
///     let q = q.clone();
///     spawn(move || {
///         for i in 0..5 {
///             q.put(i).unwrap(); // waits while the queue is full
///         }
///     })
/// };
/// let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
pub struct Queue<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// A queue without a size limit: `put` never waits.
    pub fn unbounded() -> Queue<T> {
        Queue::with_cap(None)
    }

    /// A queue holding at most `capacity` items: `put` waits while full.
    /// `bounded(0)` is a rendezvous, like [`Channel`].
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue::with_cap(Some(capacity))
    }

    fn with_cap(cap: Option<usize>) -> Queue<T> {
        Queue {
            inner: Rc::new(Inner {
                items: RefCell::new(VecDeque::new()),
                cap,
                getters: WaitList::new(),
                putters: WaitList::new(),
            }),
        }
    }

    /// Puts `item` at the back, waiting while the queue is full.
    ///
    /// # Errors
    /// [`PutError::Interrupted`] with the item if the wait was interrupted.
    #[inline]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None, "Queue::put", || {})
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutError::Full`] with the item if no room came in time;
    /// `Interrupted` with the item if the wait was interrupted.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, deadline_after(timeout), "Queue::put", || {})
    }

    /// Puts `item` if that needs no wait.
    ///
    /// # Errors
    /// [`PutError::Full`] with the item.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.try_put_inner(item).map_err(PutError::Full)
    }

    #[inline]
    fn try_put_inner(&self, item: T) -> Result<(), T> {
        let i = &self.inner;
        if let Some((w, slot)) = i.getters.pop() {
            slot.give(item);
            w.wake();
            return Ok(());
        }
        let mut items = i.items.borrow_mut();
        if i.cap.is_none_or(|c| items.len() < c) {
            items.push_back(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Inline up to a put that needs no wait (the common case); the wait
    /// is out of line. `unwound_untaken` runs if a kill unwinds the wait
    /// while the item is still the putter's (a getter may have taken it
    /// and woken the putter, and the kill come before the putter ran).
    #[inline]
    pub(super) fn put_until(
        &self,
        item: T,
        deadline: Option<Instant>,
        what: &str,
        unwound_untaken: impl FnOnce(),
    ) -> Result<(), PutError<T>> {
        match self.try_put_inner(item) {
            Ok(()) => Ok(()),
            Err(item) => self.put_wait(item, deadline, what, unwound_untaken),
        }
    }

    #[inline(never)]
    fn put_wait(
        &self,
        item: T,
        deadline: Option<Instant>,
        what: &str,
        unwound_untaken: impl FnOnce(),
    ) -> Result<(), PutError<T>> {
        /// On an unwind, tells whether the item was still the putter's
        /// (every normal end takes it out of the slot first).
        struct Unwound<'a, T, U: FnOnce()>(&'a Cell<Option<T>>, Option<U>);
        impl<T, U: FnOnce()> Drop for Unwound<'_, T, U> {
            fn drop(&mut self) {
                if let (Some(item), Some(f)) = (self.0.take(), self.1.take()) {
                    drop(item);
                    f();
                }
            }
        }
        let slot = Cell::new(Some(item));
        let _unwound = Unwound(&slot, Some(unwound_untaken));
        match self
            .inner
            .putters
            .wait(&what, Slot::of(&slot), deadline, || {})
        {
            Ok(None) => Ok(()), // a getter took the item
            Ok(Some(_)) => Err(PutError::Full(slot.take().expect("item still ours"))),
            Err(e) => Err(PutError::Interrupted(
                e,
                slot.take().expect("item still ours"),
            )),
        }
    }

    /// Takes the item at the front, waiting for one.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted (nothing is taken).
    pub fn get(&self) -> Result<T, Interrupted> {
        self.get_until(None, "Queue::get")
            .map(|v| v.expect("no deadline"))
    }

    /// Takes the front item, waiting at most `timeout`; `Ok(None)` if the
    /// queue stayed empty (gevent's `Empty`).
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, Interrupted> {
        self.get_until(deadline_after(timeout), "Queue::get")
    }

    /// Takes the front item if there is one; never waits.
    ///
    /// # Errors
    /// [`Empty`].
    pub fn try_get(&self) -> Result<T, Empty> {
        let i = &self.inner;
        let front = i.items.borrow_mut().pop_front();
        match front {
            Some(item) => {
                // Room for the longest-waiting putter's item.
                if let Some((w, slot)) = i.putters.pop() {
                    if let Some(v) = slot.take() {
                        i.items.borrow_mut().push_back(v);
                    }
                    w.wake();
                }
                Ok(item)
            }
            None => match i.putters.pop() {
                // A rendezvous (or capacity 0): take straight from a putter.
                Some((w, slot)) => {
                    let v = slot.take();
                    w.wake();
                    v.ok_or(Empty)
                }
                None => Err(Empty),
            },
        }
    }

    fn get_until(&self, deadline: Option<Instant>, what: &str) -> Result<Option<T>, Interrupted> {
        if let Ok(v) = self.try_get() {
            return Ok(Some(v));
        }
        let slot = Cell::new(None);
        // A getter killed after an item was handed to it drops the item
        // with its slot; the handed item is the kill's casualty (as in
        // gevent), never a later getter's.
        match self
            .inner
            .getters
            .wait(&what, Slot::of(&slot), deadline, || {})?
        {
            None => Ok(slot.take()),
            Some(_) => Ok(None),
        }
    }

    /// Items in the queue now.
    pub fn len(&self) -> usize {
        self.inner.items.borrow().len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would wait.
    pub fn is_full(&self) -> bool {
        self.inner
            .cap
            .is_some_and(|c| self.len() >= c && self.inner.getters.is_empty())
    }

    /// The capacity (`None`: unbounded).
    pub fn capacity(&self) -> Option<usize> {
        self.inner.cap
    }

    /// Greenlets waiting to get.
    pub fn getters(&self) -> usize {
        self.inner.getters.len()
    }

    /// Greenlets waiting to put.
    pub fn putters(&self) -> usize {
        self.inner.putters.len()
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.inner.cap)
            .field("getters", &self.getters())
            .field("putters", &self.putters())
            .finish()
    }
}

/// A rendezvous channel (gevent's `Channel`): `put` waits until a getter
/// takes the item. Cloning gives another handle to the same channel.
///
/// ```
/// use greenlet_runtime::{spawn, sync::Channel};
///
/// let ch = Channel::new();
/// let c = ch.clone();
/// let sender = spawn(move || c.put("hello").unwrap());
/// assert_eq!(ch.get().unwrap(), "hello");
/// sender.join().unwrap();
/// ```
pub struct Channel<T> {
    q: Queue<T>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel { q: self.q.clone() }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> Channel<T> {
    /// A new channel.
    pub fn new() -> Channel<T> {
        Channel {
            q: Queue::bounded(0),
        }
    }

    /// Hands `item` to a getter, waiting for one.
    ///
    /// # Errors
    /// [`PutError::Interrupted`] with the item if the wait was interrupted.
    #[inline]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put(item)
    }

    /// Hands `item` to a getter, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`PutError::Full`] with the item if no getter came in time.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.q.put_timeout(item, timeout)
    }

    /// Hands `item` to a getter that is already waiting.
    ///
    /// # Errors
    /// [`PutError::Full`] with the item if none is.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.try_put(item)
    }

    /// Takes an item, waiting for a putter.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn get(&self) -> Result<T, Interrupted> {
        self.q.get()
    }

    /// Takes an item, waiting at most `timeout`; `Ok(None)` if none came.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, Interrupted> {
        self.q.get_timeout(timeout)
    }

    /// Takes an item from a putter that is already waiting.
    ///
    /// # Errors
    /// [`Empty`] if none is.
    pub fn try_get(&self) -> Result<T, Empty> {
        self.q.try_get()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("getters", &self.q.getters())
            .field("putters", &self.q.putters())
            .finish()
    }
}
