//! Why a wait ended early: [`Interrupted`] and the ids that name timeouts.
//!
//! Every blocking call of greenlet returns `Result<_, Interrupted>` (or an
//! `io::Error` made from one). A wait ends early for exactly these reasons:
//! a timeout of the waiting greenlet expired, a greenlet linked to it died
//! ([`LinkedExited`]), what it waited on was closed or cancelled by another
//! greenlet, nothing could ever wake it (the hub would otherwise block
//! forever), or it was asked to block while its thread was unwinding from a
//! panic.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::io;
use std::panic::Location;

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
/// `LoopExit` becomes [`io::ErrorKind::Deadlock`], `LinkedExited`,
/// `Unwinding` and `Killed` become [`io::ErrorKind::Other`].
/// [`Interrupted::from_io`] recovers it.
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
    /// A greenlet this one was linked to died (`spawn_link`,
    /// `GreenletRef::link_greenlet`, gevent 0.13's `link(greenlet)`): the
    /// value names it and says how it ended. Raised once, at the current or
    /// next blocking call, in the order it happened relative to timeouts.
    #[error("{0}")]
    LinkedExited(LinkedExited),
    /// The greenlet was killed while blocked inside [`crate::defer_kill`]
    /// (code below a C-ABI frame, such as a monkey-patched libc call, which
    /// a kill's unwind must not cross). The kill stays requested: the
    /// greenlet unwinds at its next blocking call outside `defer_kill`, or
    /// is recorded as killed if it returns first.
    #[error("the greenlet was killed; the kill lands at its next blocking call")]
    Killed,
}

impl Interrupted {
    /// The timeout id if this is [`Interrupted::Timeout`].
    pub fn timeout_id(&self) -> Option<TimeoutId> {
        match self {
            Interrupted::Timeout(id) => Some(*id),
            _ => None,
        }
    }

    /// The dead greenlet if this is [`Interrupted::LinkedExited`].
    pub fn linked_exited(&self) -> Option<&LinkedExited> {
        match self {
            Interrupted::LinkedExited(e) => Some(e),
            _ => None,
        }
    }
}

/// How a linked greenlet ended (gevent 0.13: `LinkedCompleted`,
/// `LinkedKilled`, `LinkedFailed`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// It returned a value.
    Completed,
    /// It was killed (unwound with `GreenletExit`); counts as successful.
    Killed,
    /// It panicked; the panic message (`<non-string panic payload>` when the
    /// payload was not a string).
    Panicked(String),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Completed => f.write_str("completed successfully"),
            Ended::Killed => f.write_str("was killed"),
            Ended::Panicked(m) => write!(f, "panicked: {m}"),
        }
    }
}

/// The value of [`Interrupted::LinkedExited`]: which linked greenlet died
/// and how. It is a snapshot, so it is `Send` and can travel inside an
/// `io::Error`; use `id()` to match it against a handle you hold.
///
/// ```
/// use greenlet_runtime::{sleep, spawn_link, Ended, Interrupted};
/// use std::time::Duration;
///
/// let child = spawn_link(|| -> () { panic!("disk full") });
/// match sleep(Duration::from_secs(10)) {
///     Err(Interrupted::LinkedExited(dead)) => {
///         assert_eq!(dead.id(), child.id());
///         assert_eq!(dead.ended(), &Ended::Panicked("disk full".into()));
///         assert!(dead.to_string().ends_with("panicked: disk full"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedExited {
    // Boxed: `Interrupted` stays two words (see `BlockedForever`).
    inner: Box<DeadGreenlet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct DeadGreenlet {
    id: u64,
    name: String,
    spawned_at: &'static Location<'static>,
    ended: Ended,
}

impl LinkedExited {
    pub(crate) fn new(
        id: u64,
        name: String,
        spawned_at: &'static Location<'static>,
        ended: Ended,
    ) -> LinkedExited {
        LinkedExited {
            inner: Box::new(DeadGreenlet {
                id,
                name,
                spawned_at,
                ended,
            }),
        }
    }

    /// The dead greenlet's id (`GreenletRef::id`).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Its name (`Greenlet-<id>` unless named).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where it was spawned.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.inner.spawned_at
    }

    /// How it ended.
    pub fn ended(&self) -> &Ended {
        &self.inner.ended
    }
}

impl fmt::Display for LinkedExited {
    /// "linked greenlet Greenlet-7 spawned at src/main.rs:12:5 panicked: boom".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.inner;
        write!(
            f,
            "linked greenlet {} spawned at {} {}",
            d.name, d.spawned_at, d.ended
        )
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
    /// `Timeout` -> `TimedOut`, `LoopExit` -> `Deadlock`, `Cancelled`,
    /// `Unwinding`, `LinkedExited` and `Killed` -> `Other`; the `Interrupted`
    /// stays the inner error, so [`Interrupted::from_io`] (and `Timeout::is`)
    /// can recover it. (`LinkedExited` is not `ErrorKind::Interrupted`: std's
    /// `read_exact`/`write_all` retry that kind, which would swallow it.)
    fn from(e: Interrupted) -> io::Error {
        let kind = match &e {
            Interrupted::Timeout(_) => io::ErrorKind::TimedOut,
            Interrupted::LoopExit(_) => io::ErrorKind::Deadlock,
            Interrupted::Cancelled
            | Interrupted::Unwinding
            | Interrupted::LinkedExited(_)
            | Interrupted::Killed => io::ErrorKind::Other,
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

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(p: &(dyn Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}
