//! Deadlines from durations, without overflow.
//!
//! Every API that takes a `Duration` turns it into a deadline here, so that
//! `Duration::MAX` (or any duration past the clock's range) means "no
//! deadline" instead of panicking with "overflow when adding duration to
//! instant".

use std::time::{Duration, Instant};

/// The instant `d` from now, or `None` when that is past what an
/// [`Instant`] can hold: a deadline that never comes.
///
/// ```
/// use greenlet_runtime::deadline_after;
/// use std::time::Duration;
///
/// assert!(deadline_after(Duration::from_secs(1)).is_some());
/// assert_eq!(deadline_after(Duration::MAX), None);
/// ```
#[inline]
pub fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// [`deadline_after`] of an optional timeout (`None`: no deadline).
#[inline]
pub fn deadline_within(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(deadline_after)
}
