//! A FIFO list of parked greenlets, the building block of every primitive.
//!
//! A waiter is notified by being *removed* from the list and woken. After
//! its park returns, a waiter that is no longer in the list was notified; one
//! that is still there was woken by its timer (or interrupted) and removes
//! itself. That is how `wait_timeout` tells a notify from a timeout, and how
//! a hand-off (a permit, an item) is never lost: whoever removes a waiter
//! hands it what it waited for.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use crate::hub::TimerGuard;
use crate::interrupt::Interrupted;
use crate::park::park;
use crate::task::Waker;
use crate::timer::TimerAction;

/// Waiters in the order they began waiting, each with what is handed to it.
pub(crate) struct WaitList<S = ()> {
    q: RefCell<VecDeque<(Waker, S)>>,
    /// An empty buffer that keeps its capacity: `notify_all` swaps it in
    /// for the full one, so an Event set/wait cycle allocates nothing.
    spare: Cell<VecDeque<(Waker, S)>>,
}

impl<S> WaitList<S> {
    pub(crate) fn new() -> WaitList<S> {
        WaitList {
            q: RefCell::new(VecDeque::new()),
            spare: Cell::new(VecDeque::new()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.q.borrow().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.q.borrow().is_empty()
    }

    /// Removes the first waiter and returns its waker and slot; the caller
    /// hands it what it waits for, then wakes it.
    pub(crate) fn pop(&self) -> Option<(Waker, S)> {
        self.q.borrow_mut().pop_front()
    }

    /// Wakes every waiter, in wait order. Never switches.
    pub(crate) fn notify_all(&self) {
        let mut all = {
            let mut q = self.q.borrow_mut();
            if q.is_empty() {
                return;
            }
            std::mem::replace(&mut *q, self.spare.take())
        };
        // Outside the borrow: dropping a slot or a stale waker can run user
        // code, which may use this list again.
        while let Some((w, _)) = all.pop_front() {
            w.wake();
        }
        self.spare.set(all);
    }

    /// Removes the waiter of `waker`'s park; its slot if it was still there.
    pub(crate) fn remove(&self, waker: &Waker) -> Option<S> {
        let mut q = self.q.borrow_mut();
        let i = q.iter().position(|(w, _)| w.will_wake(waker))?;
        q.remove(i).map(|(_, s)| s)
    }

    /// Parks the current greenlet at the back of the list, with `slot`,
    /// until notified or `deadline`.
    ///
    /// Returns `Ok(None)` if notified (the slot went to the notifier),
    /// `Ok(Some(slot))` if the deadline passed first. On an interruption the
    /// waiter is removed and the error returned; if a kill unwinds it after
    /// it was notified, `on_lost` receives nothing but is called so the
    /// primitive can pass the hand-off on (e.g. re-release a permit).
    pub(crate) fn wait(
        &self,
        what: &dyn fmt::Display,
        slot: S,
        deadline: Option<Instant>,
        on_lost: impl FnOnce(),
    ) -> Result<Option<S>, Interrupted> {
        let mut mine: Option<Waker> = None;
        let mut timer = TimerGuard::new();
        let mut guard = LostGuard {
            list: self,
            on_lost: Some(on_lost),
        };
        let r = park(what, |w| {
            if let Some(d) = deadline {
                timer.arm(d, TimerAction::Wake(w.clone()));
            }
            mine = Some(w.clone());
            self.q.borrow_mut().push_back((w, slot));
        });
        drop(timer);
        guard.on_lost = None; // returning normally: nothing can be lost
                              // Still listed: the timer woke us, or an interruption (a notified
                              // waiter is always woken with Ok, and a wake beats an interruption).
        let left = mine.and_then(|w| self.remove(&w));
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
    fn drop(&mut self) {
        let Some(on_lost) = self.on_lost.take() else {
            return;
        };
        // Unwinding out of `park` (a kill): find the current greenlet's
        // entry by its record (a greenlet waits in one list at a time).
        let me = crate::hub::Hub::with(crate::hub::Hub::current);
        let removed = {
            let mut q = self.list.q.borrow_mut();
            let i = q.iter().position(|(w, _)| w.record().ptr_eq(&me));
            i.and_then(|i| q.remove(i))
        };
        if removed.is_none() {
            on_lost();
        }
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
