//! Timeouts for greenlet: scoped guards and `with_timeout`, with gevent's
//! semantics.
//!
//! A [`Timeout`] interrupts the waits of the greenlet that started it.
//! Start one, and if it expires while that greenlet is blocked, the
//! blocking call returns an error that names this timeout:
//!
//! ```
//! use greenlet_runtime::{sleep, Interrupted};
//! use greenlet_timeout::Timeout;
//! use std::time::Duration;
//!
//! let t = Timeout::start_new(Duration::from_millis(10));
//! let err = sleep(Duration::from_secs(10)).unwrap_err();
//! assert!(t.is(&err));
//! assert_eq!(err, Interrupted::Timeout(t.id()));
//! assert!(!t.pending());
//! ```
//!
//! # The rules
//!
//! - **Delivered only at a blocking point.** A timeout can end a wait
//!   (`sleep`, `join`, `get`, a lock, a socket read, any `park`), never
//!   CPU-bound code: a greenlet that computes for a second past its
//!   timeout is not interrupted; its next wait returns the error at once,
//!   without suspending.
//! - **Raised once.** After a timeout has interrupted one wait, the next
//!   wait of the same greenlet proceeds normally.
//! - **The guard is the scope.** Dropping a `Timeout` cancels it; a timeout
//!   that expired but was not delivered yet is discarded, so it can never
//!   surface in code after the guard's scope.
//! - **It belongs to the greenlet that called `start`**, not the one that
//!   created it, and it measures from `start`.
//! - **Nesting.** Nested timeouts fire independently and each error names
//!   its own timeout ([`Timeout::is`]): with an outer 10 ms and an inner
//!   1 s timeout, the wait fails with the outer's id and the inner is still
//!   pending until dropped; with the inner shorter, the inner's id, and the
//!   outer is still pending.
//!
//! [`with_timeout`] runs a closure under a timeout and tells whether *its*
//! timeout interrupted a wait inside it:
//!
//! ```
//! use greenlet_runtime::sleep;
//! use greenlet_timeout::with_timeout;
//! use std::time::Duration;
//!
//! let r = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(5)));
//! let elapsed = r.unwrap_err();
//! assert_eq!(elapsed.to_string(), "timed out after 0.01 seconds");
//! ```
#![deny(missing_docs)]

mod elapsed;
mod guard;
mod scope;

pub use elapsed::{Elapsed, IsTimeout};
pub use guard::{AlreadyStarted, Timeout};
pub use scope::{with_timeout, with_timeout_or};
