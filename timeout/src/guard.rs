//! [`Timeout`]: the scoped guard.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use greenlet_runtime::timeout_hook::{
    arm_timeout, cancel_timeout, timer_armed, TimeoutStatus, TimerHandle,
};
use greenlet_runtime::{deadline_after, getcurrent, GreenletRef, TimeoutId};

use crate::elapsed::{format_seconds, IsTimeout};

/// A timeout: once started, interrupts the waits of the greenlet that
/// started it when it expires (gevent's `Timeout`).
///
/// The error it raises is [`Interrupted::Timeout(id)`] with this timeout's
/// [`id`](Timeout::id); [`Timeout::is`] recognises it. Dropping the guard
/// cancels it. `!Send`: a timeout belongs to one greenlet of one thread.
///
/// ```
/// use greenlet_runtime::sleep;
/// use greenlet_timeout::Timeout;
/// use std::time::Duration;
///
/// let t = Timeout::new(Duration::from_millis(500));
/// assert_eq!(t.to_string(), "0.5 seconds");
/// t.start().unwrap();
/// sleep(Duration::from_millis(1)).unwrap(); // well within the timeout
/// assert!(t.pending());
/// drop(t); // cancelled
/// ```
///
/// [`Interrupted::Timeout(id)`]: greenlet_runtime::Interrupted::Timeout
pub struct Timeout {
    duration: Option<Duration>,
    id: TimeoutId,
    /// The armed timer and the greenlet it targets, between `start` and
    /// `cancel` (or drop).
    armed: Cell<Option<(TimerHandle, GreenletRef)>>,
}

/// `start` was called on a timeout that is already pending (gevent raises
/// an `AssertionError` there). Cancel it first to restart it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is already started; to restart it, cancel it first")]
pub struct AlreadyStarted(pub TimeoutId);

impl Timeout {
    /// A timeout of `duration`, not started. `None` makes a timeout that
    /// never fires: starting it does nothing and it is never pending. So
    /// does a duration past the clock's range, such as `Duration::MAX`.
    pub fn new(duration: impl Into<Option<Duration>>) -> Timeout {
        Timeout {
            duration: duration.into(),
            id: TimeoutId::next(),
            armed: Cell::new(None),
        }
    }

    /// A started timeout (`Timeout::new(d)` then `start()`).
    #[inline]
    pub fn start_new(duration: impl Into<Option<Duration>>) -> Timeout {
        let duration = duration.into();
        let id = TimeoutId::next();
        // Built armed in one go rather than `new` then `start`: no pending
        // check, no cancel of a timer that cannot exist, no second write.
        Timeout {
            duration,
            id,
            armed: Cell::new(duration.and_then(|d| arm(d, id))),
        }
    }

    /// Starts the timeout for the current greenlet, measured from now.
    /// A timeout that already fired, or was cancelled, can be started again.
    ///
    /// # Errors
    /// [`AlreadyStarted`] if it is pending (started and not yet fired); it
    /// keeps running unchanged.
    pub fn start(&self) -> Result<(), AlreadyStarted> {
        if self.pending() {
            return Err(AlreadyStarted(self.id));
        }
        self.cancel();
        self.armed.set(self.duration.and_then(|d| arm(d, self.id)));
        Ok(())
    }

    /// Cancels the timeout: it will not fire, and if it fired but its error
    /// was not delivered yet, no wait will see that error. Never switches.
    pub fn cancel(&self) {
        self.cancel_status();
    }

    /// Cancels and reports what was found.
    pub(crate) fn cancel_status(&self) -> Option<TimeoutStatus> {
        let (h, target) = self.armed.take()?;
        Some(cancel_timeout(h, &target, self.id))
    }

    /// True while started and not yet fired (nor cancelled).
    pub fn pending(&self) -> bool {
        let armed = self.armed.take();
        let pending = armed.as_ref().is_some_and(|(h, _)| timer_armed(*h));
        self.armed.set(armed);
        pending
    }

    /// This timeout's identity; errors it raises carry it.
    pub fn id(&self) -> TimeoutId {
        self.id
    }

    /// Its duration (`None`: never fires).
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// Was `err` raised by this timeout? Works on `Interrupted`, `Elapsed`,
    /// `io::Error` made from either, and every error wrapping an
    /// `Interrupted` (`GreenletError`, `AsyncError`, `ThreadError`,
    /// `PutError`); see [`IsTimeout`].
    pub fn is(&self, err: &(impl IsTimeout + ?Sized)) -> bool {
        err.timeout_id() == Some(self.id)
    }
}

impl Drop for Timeout {
    // Inlined, as is `start_new`: what remains is a test and a call into
    // the runtime, and around an operation that does not block, a call
    // more is a measurable share of a timeout's cost.
    #[inline]
    fn drop(&mut self) {
        if let Some((h, target)) = self.armed.get_mut().take() {
            cancel_timeout(h, &target, self.id);
        }
    }
}

/// Arms timeout `id` for the current greenlet, `d` from now; returns what
/// `Timeout::armed` holds, or `None` when `d` reaches past the clock's
/// range (such a timeout never fires, like one of `None`).
#[inline]
fn arm(d: Duration, id: TimeoutId) -> Option<(TimerHandle, GreenletRef)> {
    let at = deadline_after(d)?;
    let me = getcurrent();
    let h = arm_timeout(at, &me, id);
    Some((h, me))
}

impl fmt::Display for Timeout {
    /// The duration in seconds ("0.5 seconds"), or "never" for `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.duration {
            Some(d) => f.write_str(&format_seconds(d)),
            None => f.write_str("never"),
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("id", &self.id)
            .field("duration", &self.duration)
            .field("pending", &self.pending())
            .finish()
    }
}
