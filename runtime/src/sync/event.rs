//! [`Event`] and [`AsyncResult`]: one greenlet signals, any number wait.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waitlist::WaitList;
use crate::deadline::deadline_after;
use crate::interrupt::Interrupted;

/// A flag that greenlets can wait for (gevent's `Event`).
///
/// `set` wakes every waiter — they run after the setter blocks or yields, in
/// the order they began waiting — and later `wait`s return at once until
/// `clear`. A waiter woken by `set` returns `true` even if the flag was
/// cleared again before it ran. Cloning gives another handle to the same
/// event.
///
/// ```
/// use greenlet_runtime::{spawn, sync::Event};
///
/// let ready = Event::new();
/// let r = ready.clone();
/// let waiter = spawn(move || r.wait().map(|()| "saw it"));
/// ready.set();
/// assert_eq!(waiter.get().unwrap().unwrap(), "saw it");
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<EventInner>,
}

#[derive(Default)]
struct EventInner {
    flag: Cell<bool>,
    waiters: WaitListCell,
}

/// `WaitList` with a `Default` (for `#[derive(Default)]` above).
struct WaitListCell(WaitList);

impl Default for WaitListCell {
    fn default() -> Self {
        WaitListCell(WaitList::new())
    }
}

impl Event {
    /// A new, unset event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter. Never switches.
    #[inline]
    pub fn set(&self) {
        self.inner.flag.set(true);
        self.inner.waiters.0.notify_all();
    }

    /// Clears the flag: later `wait`s block until the next `set`.
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// # Errors
    /// [`Interrupted`]: a timeout of this greenlet, or `LoopExit` if nothing
    /// could ever set it.
    pub fn wait(&self) -> Result<(), Interrupted> {
        if self.is_set() {
            return Ok(());
        }
        // Not through `wait_until`: without a deadline there is no timed-out
        // case to tell apart.
        let notified = self.inner.waiters.0.wait(&"Event::wait", (), None, || {})?;
        debug_assert!(notified.is_none());
        Ok(())
    }

    /// Waits at most `timeout` for the flag; `Ok(false)` if it timed out.
    ///
    /// # Errors
    /// As [`Event::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        self.wait_until(deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Interrupted> {
        if self.is_set() {
            return Ok(true);
        }
        let timed_out = self
            .inner
            .waiters
            .0
            .wait(&"Event::wait", (), deadline, || {})?;
        Ok(timed_out.is_none())
    }

    /// Number of greenlets waiting.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.0.len()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// A value (or an error) that will be set once, for any number of getters
/// (gevent's `AsyncResult`). Each getter receives a clone.
///
/// ```
/// use greenlet_runtime::{spawn, sync::AsyncResult};
///
/// let result: AsyncResult<u32> = AsyncResult::new();
/// let r = result.clone();
/// spawn(move || r.set(42));
/// assert_eq!(result.get().unwrap(), 42);
/// ```
pub struct AsyncResult<T> {
    inner: Rc<AsyncInner<T>>,
}

struct AsyncInner<T> {
    value: RefCell<Option<Result<T, Arc<dyn Error + Send + Sync>>>>,
    ready: Event,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

/// Why [`AsyncResult::get`] returned no value.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsyncError {
    /// The result was set to this error with `set_error`. Shared by every
    /// getter; `Send + Sync` so the whole `AsyncError` can go into an
    /// `io::Error` or an `anyhow::Error`.
    #[error("the result is an error: {0}")]
    Failed(Arc<dyn Error + Send + Sync>),
    /// The wait was interrupted.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// `try_get` on a result that is not set yet.
    #[error("the result is not ready")]
    NotReady,
}

impl AsyncError {
    /// The interruption if this is [`AsyncError::Interrupted`].
    pub fn interrupted(&self) -> Option<&Interrupted> {
        match self {
            AsyncError::Interrupted(i) => Some(i),
            _ => None,
        }
    }
}

impl From<AsyncError> for std::io::Error {
    /// `Interrupted` converts as [`Interrupted`] does (so `Timeout::is` and
    /// [`Interrupted::from_io`] still recognise it); `Failed` and
    /// `NotReady` become `Other` with the error's text.
    fn from(e: AsyncError) -> std::io::Error {
        match e {
            AsyncError::Interrupted(i) => i.into(),
            e => std::io::Error::other(e.to_string()),
        }
    }
}

impl<T: Clone> AsyncResult<T> {
    /// An empty result.
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            inner: Rc::new(AsyncInner {
                value: RefCell::new(None),
                ready: Event::new(),
            }),
        }
    }

    /// Sets the value and wakes every getter. A later `set`/`set_error`
    /// replaces it (as in gevent). Never switches.
    pub fn set(&self, value: T) {
        *self.inner.value.borrow_mut() = Some(Ok(value));
        self.inner.ready.set();
    }

    /// Sets an error that every getter receives.
    pub fn set_error(&self, err: impl Into<Box<dyn Error + Send + Sync>>) {
        let e: Box<dyn Error + Send + Sync> = err.into();
        *self.inner.value.borrow_mut() = Some(Err(Arc::from(e)));
        self.inner.ready.set();
    }

    /// Whether a value or an error is set.
    pub fn ready(&self) -> bool {
        self.inner.value.borrow().is_some()
    }

    /// Waits for the value and returns a clone of it.
    ///
    /// # Errors
    /// [`AsyncError::Failed`] if an error was set; `Interrupted` if the wait
    /// was.
    pub fn get(&self) -> Result<T, AsyncError> {
        self.inner.ready.wait()?;
        self.try_get()
    }

    /// Waits at most `timeout`; `Ok(None)` if it timed out.
    ///
    /// # Errors
    /// As [`AsyncResult::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, AsyncError> {
        if !self.inner.ready.wait_timeout(timeout)? {
            return Ok(None);
        }
        self.try_get().map(Some)
    }

    /// The value if set; never waits.
    ///
    /// # Errors
    /// `NotReady` if nothing is set, `Failed` if an error is.
    pub fn try_get(&self) -> Result<T, AsyncError> {
        match &*self.inner.value.borrow() {
            None => Err(AsyncError::NotReady),
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(AsyncError::Failed(e.clone())),
        }
    }

    /// Waits until set, without taking the value.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn wait(&self) -> Result<(), Interrupted> {
        self.inner.ready.wait()
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.inner.value.borrow().is_some())
            .finish()
    }
}
