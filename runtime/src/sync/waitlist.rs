//! A FIFO list of parked greenlets, the building block of every primitive.
//!
//! A waiter is notified by being *removed* from the list and woken. After
//! its park returns, a waiter that is no longer in the list was notified; one
//! that is still there was woken by its timer (or interrupted) and removes
//! itself. That is how `wait_timeout` tells a notify from a timeout, and how
//! a hand-off (a permit, an item) is never lost: whoever removes a waiter
//! hands it what it waited for.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use crate::hub::{Hub, TimerGuard};
use crate::interrupt::Interrupted;
use crate::park::park;
use crate::task::Waker;
use crate::timer::TimerAction;

/// Waiters in the order they began waiting, each with what is handed to it.
///
/// An `UnsafeCell`, not a `RefCell`: every hand-off of every primitive goes
/// through here, and the borrow flag was a measurable share of a lock or an
/// event hand-off. No method calls out while it holds a reference to the
/// deque (an entry's waker and slot, whose drops can run user code, are
/// always dropped by the caller, after the method returned), so no two
/// references to it can overlap.
pub(crate) struct WaitList<S = ()> {
    q: UnsafeCell<VecDeque<(Waker, S)>>,
    /// An empty buffer that keeps its capacity: `notify_all` of several
    /// waiters swaps it in for the full one, so an Event set/wait cycle
    /// allocates nothing.
    spare: Cell<VecDeque<(Waker, S)>>,
}

impl<S> WaitList<S> {
    pub(crate) fn new() -> WaitList<S> {
        WaitList {
            q: UnsafeCell::new(VecDeque::new()),
            spare: Cell::new(VecDeque::new()),
        }
    }

    /// The deque, for the length of one method that does not call out.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    fn q(&self) -> &mut VecDeque<(Waker, S)> {
        // SAFETY: `UnsafeCell` makes the list `!Sync`, so only this thread
        // gets here; every caller uses the reference within one
        // method that runs no other code meanwhile (see the struct), so it
        // is the only one alive.
        unsafe { &mut *self.q.get() }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.q().len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.q().is_empty()
    }

    /// Removes the first waiter and returns its waker and slot; the caller
    /// hands it what it waits for, then wakes it.
    #[inline]
    pub(crate) fn pop(&self) -> Option<(Waker, S)> {
        self.q().pop_front()
    }

    /// Wakes every waiter, in wait order. Never switches.
    #[inline]
    pub(crate) fn notify_all(&self) {
        match self.len() {
            0 => {}
            // The common case needs no snapshot of the list (and, inline,
            // no frame of its own).
            1 => {
                if let Some((w, _)) = self.pop() {
                    w.wake();
                }
            }
            _ => self.notify_many(),
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_many(&self) {
        // Exactly those waiting now: dropping a slot or a stale waker (the
        // last reference to a record) can run user code, which might make
        // this list change under the loop.
        let mut all = std::mem::replace(self.q(), self.spare.take());
        while let Some((w, _)) = all.pop_front() {
            w.wake();
        }
        self.spare.set(all);
    }

    /// Whether the current greenlet has an entry (for a debug check).
    fn has_current(&self) -> bool {
        let me = Hub::with(|hub| hub.current_core() as *const _);
        self.q()
            .iter()
            .any(|(w, _)| std::ptr::eq(w.record().as_ptr(), me))
    }

    /// Removes the current greenlet's entry (a greenlet waits in one list
    /// at a time, so its record names it); the entry if it was still there.
    fn remove_current(&self) -> Option<(Waker, S)> {
        let me = Hub::with(|hub| hub.current_core() as *const _);
        let q = self.q();
        let i = q
            .iter()
            .position(|(w, _)| std::ptr::eq(w.record().as_ptr(), me))?;
        q.remove(i)
    }

    /// Parks the current greenlet at the back of the list, with `slot`,
    /// until notified or `deadline`.
    ///
    /// Returns `Ok(None)` if notified (the slot went to the notifier),
    /// `Ok(Some(slot))` if the deadline passed first. On an interruption the
    /// waiter is removed and the error returned; if a kill unwinds it after
    /// it was notified, `on_lost` receives nothing but is called so the
    /// primitive can pass the hand-off on (e.g. re-release a permit).
    #[inline]
    pub(crate) fn wait(
        &self,
        what: &dyn fmt::Display,
        slot: S,
        deadline: Option<Instant>,
        on_lost: impl FnOnce(),
    ) -> Result<Option<S>, Interrupted> {
        let mut guard = LostGuard {
            list: self,
            on_lost: Some(on_lost),
        };
        // Two parks, so that a wait without a deadline (most) neither
        // builds nor drops a timer guard, nor tests for a deadline.
        let r = match deadline {
            None => park(what, |w| self.q().push_back((w, slot))),
            Some(d) => {
                let mut timer = TimerGuard::new();
                park(what, |w| {
                    timer.arm(d, TimerAction::Wake(w.clone()));
                    self.q().push_back((w, slot));
                })
            }
        };
        // Returning normally: nothing can be lost.
        guard.on_lost = None;
        // A notifier removes the waiter before it wakes it, and nothing else
        // but the timer ends this park with `Ok`: without a timer, `Ok` means
        // notified, and there is nothing to look for.
        // (`queue::Slot`'s validity rests on this: a waiter never leaves
        // `wait` listed.)
        if r.is_ok() && deadline.is_none() {
            debug_assert!(!self.has_current(), "woken with Ok while listed");
            return Ok(None);
        }
        self.leave(r)
    }

    /// The end of a wait that may not have been notified: one still
    /// listed was woken by its timer, or interrupted (a notified waiter is
    /// always woken with `Ok`, and a wake beats an interruption), and takes
    /// its slot back. Out of line, so that the common end of an untimed
    /// wait keeps nothing across its park.
    #[inline(never)]
    fn leave(&self, r: Result<(), Interrupted>) -> Result<Option<S>, Interrupted> {
        let left = self.remove_current().map(|(_, s)| s);
        r.map(|()| left)
    }
}

/// Cleans up a waiter whose park unwinds (kill): removes it from the list,
/// or, if it had already been notified, calls `on_lost`.
struct LostGuard<'a, S, F: FnOnce()> {
    list: &'a WaitList<S>,
    on_lost: Option<F>,
}

impl<S, F: FnOnce()> Drop for LostGuard<'_, S, F> {
    #[inline]
    fn drop(&mut self) {
        if let Some(on_lost) = self.on_lost.take() {
            lost(self.list, on_lost);
        }
    }
}

/// Unwinding out of `park` (a kill): the waiter leaves the list, or passes
/// on what it was handed.
#[cold]
fn lost<S>(list: &WaitList<S>, on_lost: impl FnOnce()) {
    if list.remove_current().is_none() {
        on_lost();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use super::WaitList;
    use crate::{spawn, yield_now};

    #[test]
    fn notify_all_wakes_every_waiter_in_wait_order() {
        let list = Rc::new(WaitList::<u32>::new());
        let woke = Rc::new(RefCell::new(Vec::new()));
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (list, woke) = (list.clone(), woke.clone());
                spawn(move || {
                    let left = list.wait(&"the test list", i, None, || {}).unwrap();
                    woke.borrow_mut().push((i, left));
                })
            })
            .collect();
        yield_now(); // all three wait
        assert_eq!(list.len(), 3);
        list.notify_all();
        assert!(list.is_empty(), "notified waiters leave the list");
        for g in waiters {
            g.join().unwrap();
        }
        assert_eq!(*woke.borrow(), [(0, None), (1, None), (2, None)]);
    }

    #[test]
    fn pop_hands_over_the_slot_and_a_deadline_gives_it_back() {
        let list = Rc::new(WaitList::<&str>::new());
        let l = list.clone();
        let first = spawn(move || l.wait(&"the test list", "first", None, || {}).unwrap());
        let l = list.clone();
        let soon = Some(Instant::now() + Duration::from_millis(5));
        let second = spawn(move || l.wait(&"the test list", "second", soon, || {}).unwrap());
        yield_now();
        let (w, slot) = list.pop().unwrap();
        assert_eq!(slot, "first");
        w.wake();
        assert_eq!(first.get().unwrap(), None, "notified: the slot went");
        assert_eq!(second.get().unwrap(), Some("second"), "timed out: kept");
        assert!(list.is_empty(), "the timed-out waiter removed itself");
    }
}
