//! [`Elapsed`], the error of `with_timeout`, and [`IsTimeout`], which lets
//! `Timeout::is` recognise its own error in any error type that carries it.

use std::io;
use std::time::Duration;

use greenlet_runtime::sync::{AsyncError, PutError};
use greenlet_runtime::threadpool::ThreadError;
use greenlet_runtime::{GreenletError, Interrupted, TimeoutId};

/// A timeout expired and interrupted a wait (the error of
/// [`with_timeout`](crate::with_timeout)).
///
/// Converts into an `io::Error` of kind `TimedOut` whose inner error is this
/// `Elapsed`, so [`Timeout::is`](crate::Timeout::is) still recognises it on
/// errors coming out of socket code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {}", format_seconds(*.duration))]
pub struct Elapsed {
    id: TimeoutId,
    duration: Duration,
}

impl Elapsed {
    pub(crate) fn new(id: TimeoutId, duration: Duration) -> Elapsed {
        Elapsed { id, duration }
    }

    /// The id of the timeout that expired.
    pub fn id(&self) -> TimeoutId {
        self.id
    }

    /// Its duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// An error that may have been raised by a timeout: lets
/// [`Timeout::is`](crate::Timeout::is) work on [`Interrupted`], [`Elapsed`],
/// `io::Error` (made from any of these) and every error that wraps an
/// `Interrupted`: [`GreenletError`], [`AsyncError`], [`ThreadError`],
/// [`PutError`].
///
/// ```
/// use greenlet_runtime::sync::AsyncResult;
/// use greenlet_timeout::Timeout;
/// use std::time::Duration;
///
/// let never: AsyncResult<u8> = AsyncResult::new();
/// let t = Timeout::start_new(Duration::from_millis(5));
/// # let _keep = greenlet_runtime::spawn_later(Duration::from_secs(5), || ());
/// let err = never.get().unwrap_err();
/// assert!(t.is(&err));
/// assert!(t.is(&std::io::Error::from(err)));
/// ```
pub trait IsTimeout {
    /// The id of the timeout that raised this error, if one did.
    fn timeout_id(&self) -> Option<TimeoutId>;
}

impl IsTimeout for Interrupted {
    fn timeout_id(&self) -> Option<TimeoutId> {
        Interrupted::timeout_id(self)
    }
}

impl IsTimeout for Elapsed {
    fn timeout_id(&self) -> Option<TimeoutId> {
        Some(self.id)
    }
}

impl IsTimeout for io::Error {
    fn timeout_id(&self) -> Option<TimeoutId> {
        let inner = self.get_ref()?;
        if let Some(e) = inner.downcast_ref::<Elapsed>() {
            return Some(e.id);
        }
        inner.downcast_ref::<Interrupted>()?.timeout_id()
    }
}

impl IsTimeout for GreenletError {
    fn timeout_id(&self) -> Option<TimeoutId> {
        self.interrupted()?.timeout_id()
    }
}

impl IsTimeout for AsyncError {
    fn timeout_id(&self) -> Option<TimeoutId> {
        self.interrupted()?.timeout_id()
    }
}

impl IsTimeout for ThreadError {
    fn timeout_id(&self) -> Option<TimeoutId> {
        self.interrupted()?.timeout_id()
    }
}

impl<T> IsTimeout for PutError<T> {
    fn timeout_id(&self) -> Option<TimeoutId> {
        self.interrupted()?.timeout_id()
    }
}

impl<T: IsTimeout + ?Sized> IsTimeout for &T {
    fn timeout_id(&self) -> Option<TimeoutId> {
        (**self).timeout_id()
    }
}

/// "0.5 seconds", "1 second", "2.25 seconds".
pub(crate) fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s == 1.0 {
        "1 second".to_string()
    } else {
        format!("{s} seconds")
    }
}
