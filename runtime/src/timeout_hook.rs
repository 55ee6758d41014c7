//! The hook the timeout crate (`greenlet-timeout`) is built on: arm a timer
//! that interrupts a greenlet's current or next wait with
//! [`Interrupted::Timeout`](crate::Interrupted::Timeout), and cancel it.
//!
//! Programs use `greenlet::Timeout` / `with_timeout`; these functions are
//! for crates that build their own timeout types on the runtime. They arm
//! through the hub's one timer-arming path, the same as `sleep`, timed
//! joins and I/O deadlines.

use std::time::Instant;

use crate::greenlet::GreenletRef;
use crate::hub::Hub;
use crate::interrupt::TimeoutId;
use crate::timer::TimerAction;

pub use crate::timer::TimerHandle;

/// Arms a timer that delivers
/// [`Interrupted::Timeout(id)`](crate::Interrupted::Timeout) to `target` at
/// `deadline`.
///
/// If `target` is parked then, its wait ends with that error; otherwise the
/// error is kept and returned by its next wait (without suspending).
pub fn arm_timeout(deadline: Instant, target: &GreenletRef, id: TimeoutId) -> TimerHandle {
    Hub::with(|hub| hub.arm_timer(deadline, || TimerAction::Interrupt(target.rec.clone(), id)))
}

/// What [`cancel_timeout`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutStatus {
    /// The timer was still armed; it is now cancelled and will never fire.
    Cancelled,
    /// It had fired but its error was not delivered yet; the error is now
    /// discarded and no wait will see it.
    Discarded,
    /// It had fired and a wait of the target already returned its error
    /// (or the handle was unknown).
    Delivered,
}

/// Cancels a timer armed by [`arm_timeout`]; if it already fired, discards
/// its error when not delivered yet. Safe to call at any time, also during
/// thread exit (then a no-op reporting `Delivered`).
pub fn cancel_timeout(handle: TimerHandle, target: &GreenletRef, id: TimeoutId) -> TimeoutStatus {
    match Hub::try_with(|hub| hub.cancel_timer_held(handle, &target.rec)) {
        None => TimeoutStatus::Delivered,
        Some(true) => TimeoutStatus::Cancelled,
        Some(false) if target.rec.core().discard_pending(id) => TimeoutStatus::Discarded,
        Some(false) => TimeoutStatus::Delivered,
    }
}

/// Whether a timer is still armed (neither fired nor cancelled).
pub fn timer_armed(handle: TimerHandle) -> bool {
    Hub::try_with(|hub| hub.timer_armed(handle)).unwrap_or(false)
}
