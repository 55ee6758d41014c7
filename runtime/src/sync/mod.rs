//! Synchronisation between greenlets of one hub (gevent.event, gevent.queue,
//! gevent.lock): [`Event`], [`AsyncResult`], [`Queue`], [`JoinableQueue`],
//! [`Channel`], [`Semaphore`] and [`BoundedSemaphore`] (with
//! [`SemaphoreGuard`]), [`Lock`], [`RLock`].
//!
//! Rules shared by all of them:
//! - **Waking never switches.** `set`, `put`, `release` make waiters ready;
//!   they run when the waker blocks or yields, in the order they began
//!   waiting.
//! - **Waits come in pairs**: `x()` waits as long as it takes, `x_timeout(d)`
//!   gives up after `d` (`Ok(false)` / `Ok(None)` / `PutError::Full`, not an
//!   error). Both return `Err(Interrupted)` when a `Timeout` of the waiting
//!   greenlet fires or nothing could ever wake it, and a kill unwinds out of
//!   them; nothing is taken or lost then.
//! - **Hand-off**: a permit or item freed while greenlets wait goes to the
//!   longest waiter, so nobody is overtaken.
//! - Each type is a cheap handle (`Clone`) to a shared object, so a copy
//!   can move into each `spawn` closure. They are `!Send`: they belong to
//!   one hub; cross threads with `hub::Remote`.

mod event;
mod joinable;
#[cfg(test)]
mod model;
mod permit;
mod queue;
mod semaphore;
mod waitlist;

pub use event::{AsyncError, AsyncResult, Event};
pub use joinable::{JoinableQueue, TaskDoneTooOften};
pub use permit::SemaphoreGuard;
pub use queue::{Channel, Empty, PutError, Queue};
pub use semaphore::{BoundedSemaphore, Lock, LockGuard, OverReleased, RLock, Semaphore};
