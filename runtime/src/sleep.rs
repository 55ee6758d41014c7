//! Giving up the CPU: [`sleep`] and [`yield_now`].

use std::time::Duration;

use crate::deadline::deadline_after;
use crate::hub::Hub;
use crate::hub::TimerGuard;
use crate::interrupt::Interrupted;
use crate::park::park;
use crate::timer::TimerAction;

/// Suspends the current greenlet for `duration`, measured from this call.
///
/// `sleep(Duration::ZERO)` is the canonical yield: the greenlet goes to the
/// back of the ready queue and the others that are ready run first. A
/// sleep is a blocking point: it is where timeouts are delivered and kills
/// land.
///
/// # Errors
/// [`Interrupted::Timeout`] if a timeout of this greenlet expired before or
/// during the sleep; [`Interrupted::Unwinding`] if called while the thread
/// unwinds (it then returns at once).
///
/// ```
/// use greenlet_runtime::sleep;
/// use std::time::{Duration, Instant};
///
/// let t0 = Instant::now();
/// sleep(Duration::from_millis(20)).unwrap();
/// assert!(t0.elapsed() >= Duration::from_millis(20));
/// ```
pub fn sleep(duration: Duration) -> Result<(), Interrupted> {
    if duration.is_zero() {
        return Hub::with(Hub::yield_wait);
    }
    // Past the clock's range: a sleep no timer ends (only a kill, a
    // timeout of the caller, or `LoopExit`).
    let deadline = deadline_after(duration);
    let mut timer = TimerGuard::new();
    park(&format_args!("sleep({duration:?})"), |w| {
        if let Some(d) = deadline {
            timer.arm(d, TimerAction::Wake(w));
        }
    })
}

/// Waits until the hub has nothing else to do (gevent's `idle()`): no other
/// greenlet is ready to run, and a look at I/O, timers and remote work
/// found nothing to start. Greenlets that keep yielding keep it waiting.
///
/// # Errors
/// [`Interrupted`] if the wait was interrupted (a timeout of this
/// greenlet, a linked greenlet's death).
///
/// ```
/// use greenlet_runtime::{idle, spawn, yield_now};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let steps = Rc::new(Cell::new(0));
/// let s = steps.clone();
/// spawn(move || {
///     for _ in 0..100 {
///         s.set(s.get() + 1);
///         yield_now();
///     }
/// });
/// idle().unwrap();
/// assert_eq!(steps.get(), 100, "the busy greenlet finished first");
/// ```
pub fn idle() -> Result<(), Interrupted> {
    Hub::with(Hub::idle)
}

/// Lets every other ready greenlet run, then continues; returns at once if
/// the thread is unwinding. Unlike `sleep(ZERO)` it never reports a
/// timeout (a pending one stays for the next wait), but a kill lands here.
#[inline]
pub fn yield_now() {
    Hub::with(Hub::yield_now);
}
