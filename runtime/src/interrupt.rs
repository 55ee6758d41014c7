//! Why a wait ended early: [`Interrupted`] and the ids that name timeouts.
//!
//! Every blocking call of greenlet returns `Result<_, Interrupted>` (or an
//! `io::Error` made from one). A wait ends early for exactly these reasons:
//! a timeout of the waiting greenlet expired, what it waited on was closed or
//! cancelled by another greenlet, nothing could ever wake it (the hub would
//! otherwise block forever), or it was asked to block while its thread was
//! unwinding from a panic.

use std::cell::Cell;
use std::fmt;
use std::io;

/// Identity of one timeout (see the `greenlet-timeout` crate).
///
/// Ids are unique per OS thread for the life of the thread, so an error
/// carrying a `TimeoutId` can be matched against the timeout that raised it
/// (`Timeout::is`), even when several timeouts are nested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeoutId(u64);

thread_local! {
    static NEXT_TIMEOUT_ID: Cell<u64> = const { Cell::new(1) };
}

impl TimeoutId {
    /// Returns a fresh id, never returned before on this thread.
    #[inline]
    pub fn next() -> TimeoutId {
        NEXT_TIMEOUT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            TimeoutId(id)
        })
    }

    /// The id as a number, for logs.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TimeoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timeout #{}", self.0)
    }
}

/// Why a blocking call returned before what it waited for happened.
///
/// Converts into [`io::Error`] (see the `From` impl) so socket code can use
/// `?` on it: `Timeout` becomes [`io::ErrorKind::TimedOut`], `Cancelled`
/// becomes the EBADF error "File descriptor was closed in another greenlet",
/// `LoopExit` becomes [`io::ErrorKind::Deadlock`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Interrupted {
    /// A timeout started by the waiting greenlet expired. The id says which
    /// one, so nested timeouts can tell their own error from an outer one's.
    /// A timeout is raised once: the next wait proceeds normally.
    #[error("{0} expired")]
    Timeout(TimeoutId),
    /// Another greenlet closed or cancelled what this greenlet waited on
    /// (`cancel_wait`, `close`). The resource is gone; do not retry.
    #[error("[Errno 9] File descriptor was closed in another greenlet")]
    Cancelled,
    /// Nothing could ever end this wait: no greenlet was ready and no timer,
    /// I/O wait, thread-pool job or remote handle could wake it. The message
    /// says what was being waited on and where it was spawned.
    #[error("{0}")]
    LoopExit(BlockedForever),
    /// The greenlet asked to block while its thread was unwinding from a
    /// panic (or from `kill`). A greenlet never suspends mid-unwind, because
    /// the panic count is per OS thread and every other greenlet would see
    /// it; the wait fails at once instead.
    #[error("cannot block while the thread is unwinding from a panic or a kill")]
    Unwinding,
}

impl Interrupted {
    /// The timeout id if this is [`Interrupted::Timeout`].
    pub fn timeout_id(&self) -> Option<TimeoutId> {
        match self {
            Interrupted::Timeout(id) => Some(*id),
            _ => None,
        }
    }
}

/// The explanation carried by [`Interrupted::LoopExit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedForever {
    // One word, so that `Interrupted` is two and `Result<(), Interrupted>`,
    // which every park returns, comes back in registers.
    #[allow(clippy::box_collection)]
    what: Box<String>,
}

impl BlockedForever {
    pub(crate) fn new(what: String) -> BlockedForever {
        BlockedForever {
            what: Box::new(what),
        }
    }

    /// What was being waited on, e.g. "join of Greenlet-7 spawned at
    /// src/main.rs:12:13".
    pub fn waiting_on(&self) -> &str {
        &self.what
    }
}

impl fmt::Display for BlockedForever {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this operation would block forever: {} (no greenlet is ready and no timer, \
             I/O wait, thread-pool job or remote handle can wake it; \
             a wake-up that should have happened was missed)",
            self.what
        )
    }
}

impl From<Interrupted> for io::Error {
    /// `Timeout` -> `TimedOut`, `LoopExit` -> `Deadlock`, `Cancelled` and
    /// `Unwinding` -> `Other`; the `Interrupted` stays the inner error, so
    /// [`Interrupted::from_io`] (and `Timeout::is`) can recover it.
    fn from(e: Interrupted) -> io::Error {
        let kind = match &e {
            Interrupted::Timeout(_) => io::ErrorKind::TimedOut,
            Interrupted::LoopExit(_) => io::ErrorKind::Deadlock,
            Interrupted::Cancelled | Interrupted::Unwinding => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

impl Interrupted {
    /// Recovers the `Interrupted` inside an `io::Error` made from one, or
    /// `None` for any other `io::Error`.
    pub fn from_io(err: &io::Error) -> Option<Interrupted> {
        err.get_ref()?.downcast_ref::<Interrupted>().cloned()
    }
}
