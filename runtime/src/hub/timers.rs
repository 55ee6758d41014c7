//! The hub's one timer-arming path: sleeps, timed waits, I/O deadlines,
//! `spawn_later` and the timeout hook all arm and cancel here.

use std::time::Instant;

use super::Hub;
use crate::timer::{TimerAction, TimerHandle};

impl Hub {
    /// Arms a timer whose action `make` builds once its slot is chosen (see
    /// `Timers::arm_with`: writing it in place spares a copy that arming a
    /// timeout would stall on).
    #[inline]
    pub(crate) fn arm_timer(&self, at: Instant, make: impl FnOnce() -> TimerAction) -> TimerHandle {
        self.timers.borrow_mut().arm_with(at, make)
    }

    /// Cancels a timer; false if it had already fired or been cancelled.
    /// Its action (which can hold the last reference to a record) is
    /// dropped after the queue is released.
    #[inline]
    pub(crate) fn cancel_timer(&self, h: TimerHandle) -> bool {
        let rec = self.timers.borrow_mut().cancel_to_record(h);
        rec.is_some()
    }

    /// [`Hub::cancel_timer`] of a timer whose action's record the caller
    /// holds a reference to (see `Timers::cancel_held`).
    #[inline]
    pub(crate) fn cancel_timer_held(&self, h: TimerHandle, held: &crate::task::Rec) -> bool {
        let result = self.timers.borrow_mut().cancel_held(h, held);
        // The borrow has ended: another record's reference (`Err`, a
        // cancelled timer) may go now.
        result.unwrap_or(true)
    }

    /// Whether a timer is still armed.
    pub(crate) fn timer_armed(&self, h: TimerHandle) -> bool {
        self.timers.borrow().is_armed(h)
    }
}

/// Cancels a timer when dropped, so a wait that unwinds (a kill) never
/// leaves its timer armed behind it.
pub(crate) struct TimerGuard(Option<TimerHandle>);

impl TimerGuard {
    #[inline]
    pub(crate) fn new() -> TimerGuard {
        TimerGuard(None)
    }

    pub(crate) fn arm(&mut self, at: Instant, action: TimerAction) {
        self.0 = Some(Hub::with(|hub| hub.arm_timer(at, || action)));
    }
}

impl Drop for TimerGuard {
    /// Inline: most waits arm no timer, and then this is one test.
    #[inline]
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            cancel_guarded(h);
        }
    }
}

#[inline(never)]
fn cancel_guarded(h: TimerHandle) {
    Hub::try_with(|hub| hub.cancel_timer(h));
}
