//! [`SemaphoreGuard`]: a permit of a [`Semaphore`] or [`BoundedSemaphore`]
//! that is released when dropped, so a `?` or a kill between acquire and
//! release cannot leak it (gevent: `with sem:`).

use std::fmt;
use std::time::Duration;

use super::semaphore::{BoundedSemaphore, Semaphore};
use crate::interrupt::Interrupted;

/// One permit of a [`Semaphore`] (or [`BoundedSemaphore`]), released when
/// dropped — also when the holder unwinds (a panic or a kill). It owns a
/// handle to the semaphore, so it can move into a spawned greenlet.
///
/// ```
/// use greenlet_runtime::sync::Semaphore;
///
/// fn work(sem: &Semaphore) -> Result<(), Box<dyn std::error::Error>> {
///     let _permit = sem.acquire_guard()?;
///     Err("failed half-way")? // the permit is released here anyway
/// }
///
/// let sem = Semaphore::new(1);
/// assert!(work(&sem).is_err());
/// assert_eq!(sem.available(), 1);
/// ```
#[must_use = "the permit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    // A permit of a `BoundedSemaphore` never over-releases (it was taken
    // from the semaphore), so the plain release serves both.
    sem: Option<Semaphore>,
}

impl SemaphoreGuard {
    /// Keeps the permit taken: the guard is consumed without releasing it
    /// (release it later with `release`).
    pub fn forget(mut self) {
        self.sem = None;
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take() {
            sem.release();
        }
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

fn guard(sem: &Semaphore) -> SemaphoreGuard {
    SemaphoreGuard {
        sem: Some(sem.clone()),
    }
}

impl Semaphore {
    /// Takes a permit, waiting for one, and returns it as a guard that
    /// releases it when dropped.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted (no permit is taken).
    pub fn acquire_guard(&self) -> Result<SemaphoreGuard, Interrupted> {
        self.acquire()?;
        Ok(guard(self))
    }

    /// Like [`Semaphore::acquire_guard`], waiting at most `timeout`;
    /// `Ok(None)` if no permit came.
    ///
    /// # Errors
    /// As [`Semaphore::acquire_guard`].
    pub fn acquire_guard_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<SemaphoreGuard>, Interrupted> {
        Ok(self.acquire_timeout(timeout)?.then(|| guard(self)))
    }

    /// A permit as a guard if one is free and nobody waits; never waits.
    pub fn try_acquire_guard(&self) -> Option<SemaphoreGuard> {
        self.try_acquire().then(|| guard(self))
    }
}

impl BoundedSemaphore {
    /// As [`Semaphore::acquire_guard`].
    ///
    /// # Errors
    /// As [`Semaphore::acquire_guard`].
    pub fn acquire_guard(&self) -> Result<SemaphoreGuard, Interrupted> {
        self.as_semaphore().acquire_guard()
    }

    /// As [`Semaphore::acquire_guard_timeout`].
    ///
    /// # Errors
    /// As [`Semaphore::acquire_guard`].
    pub fn acquire_guard_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<SemaphoreGuard>, Interrupted> {
        self.as_semaphore().acquire_guard_timeout(timeout)
    }

    /// As [`Semaphore::try_acquire_guard`].
    pub fn try_acquire_guard(&self) -> Option<SemaphoreGuard> {
        self.as_semaphore().try_acquire_guard()
    }
}
