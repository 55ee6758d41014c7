//! [`with_timeout`] and [`with_timeout_or`]: a closure under a timeout.

use std::time::Duration;

use greenlet_runtime::timeout_hook::TimeoutStatus;

use crate::elapsed::Elapsed;
use crate::guard::Timeout;

/// Runs `f` under a timeout of `duration`.
///
/// Returns `Err(Elapsed)` exactly when this timeout interrupted a wait
/// inside `f` (whatever `f` then returned is dropped); otherwise `f`'s
/// value. An error from an *outer* timeout that `f` passes on is part of
/// `f`'s value and comes out unchanged.
///
/// # Errors
/// [`Elapsed`] as described.
///
/// ```
/// use greenlet_runtime::sleep;
/// use greenlet_timeout::with_timeout;
/// use std::time::Duration;
///
/// let fast = with_timeout(Duration::from_secs(1), || 7);
/// assert_eq!(fast.unwrap(), 7);
/// let slow = with_timeout(Duration::from_millis(5), || sleep(Duration::from_secs(5)));
/// assert!(slow.is_err());
/// ```
pub fn with_timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let t = Timeout::start_new(duration);
    let value = f();
    match t.cancel_status() {
        Some(TimeoutStatus::Delivered) => Err(Elapsed::new(t.id(), duration)),
        _ => Ok(value),
    }
}

/// Runs `f` under a timeout of `duration`; `timeout_value` if the timeout
/// interrupted a wait inside `f` (gevent's `with_timeout(..,
/// timeout_value=..)`).
///
/// ```
/// use greenlet_runtime::sleep;
/// use greenlet_timeout::with_timeout_or;
/// use std::time::Duration;
///
/// let v = with_timeout_or(Duration::from_millis(5), "gave up", || {
///     sleep(Duration::from_secs(5)).map(|()| "finished").unwrap_or("interrupted")
/// });
/// assert_eq!(v, "gave up");
/// ```
pub fn with_timeout_or<T>(duration: Duration, timeout_value: T, f: impl FnOnce() -> T) -> T {
    with_timeout(duration, f).unwrap_or(timeout_value)
}
