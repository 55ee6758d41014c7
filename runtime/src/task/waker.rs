//! [`Waker`]: ends one park of one greenlet.
//!
//! Each park has a sequence number, and every waker carries the number of
//! the park it was made for: waking a stale waker (from a wait that already
//! ended) never ends a later park. A wake reaches the scheduler through
//! the kernel's one hook, [`super::schedule`].

use std::fmt;

use super::core::WakeReason;
use super::record::Rec;
use crate::interrupt::Interrupted;

/// Wakes one park of one greenlet. Cheap to clone (a reference count).
///
/// A waker is bound to the park it was made for: once that park has ended
/// (woken, interrupted or killed), waking it does nothing. `!Send`: wakers
/// never leave their hub's thread (use `Remote` to cross threads).
#[derive(Clone)]
pub struct Waker {
    rec: Rec,
    seq: u32,
}

impl Waker {
    /// A waker of the park `rec` is about to enter (or is in).
    #[inline]
    pub(crate) fn for_park(rec: Rec) -> Waker {
        let seq = rec.core().park_seq();
        Waker { rec, seq }
    }

    /// The record of the greenlet it wakes.
    #[inline]
    pub(crate) fn record(&self) -> &Rec {
        &self.rec
    }

    /// Ends the park this waker was made for, if it has not ended yet: the
    /// greenlet is scheduled and its `park` returns `Ok(())`. Never switches.
    #[inline]
    pub fn wake(self) {
        if self.rec.core().is_parked_at(self.seq) {
            // The wake reason is already `Woken`: `park` takes it on every
            // return, and an interrupt that set another reason also made the
            // greenlet `Scheduled`, so it is not `Parked` here.
            // Moves this waker's reference into the ready queue.
            super::schedule(self.rec);
        }
    }

    /// Like [`Waker::wake`] without consuming the waker.
    pub fn wake_by_ref(&self) {
        self.wake_with(WakeReason::Woken);
    }

    /// Ends the park with an error: its `park` returns `Err(reason)`.
    /// Used by `cancel_wait`/`close` to fail a waiter with
    /// [`Interrupted::Cancelled`].
    pub fn interrupt(&self, reason: Interrupted) {
        self.wake_with(WakeReason::Interrupted(reason));
    }

    /// True when the park this waker was made for has ended; waking it is
    /// then a no-op.
    pub fn is_stale(&self) -> bool {
        !self.rec.core().is_parked_at(self.seq)
    }

    /// True if both wakers wake the same park.
    pub fn will_wake(&self, other: &Waker) -> bool {
        self.rec.ptr_eq(&other.rec) && self.seq == other.seq
    }

    #[inline]
    fn wake_with(&self, reason: WakeReason) {
        let core = self.rec.core();
        if core.is_parked_at(self.seq) {
            core.set_wake_reason(reason);
            super::schedule(self.rec.clone());
        }
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("greenlet", &self.rec.core().id())
            .field("seq", &self.seq)
            .finish()
    }
}
