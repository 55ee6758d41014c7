//! Signal handlers that run as greenlets (gevent's `signal_handler`).
//!
//! [`signal`] registers a handler for a signal number on the current hub.
//! Each time the signal arrives, the hub runs the handler in a new greenlet
//! (so it may block, take locks, write to sockets). [`SignalHandler::cancel`]
//! (or dropping the handle) removes it, and when the last handler of a
//! signal is removed the disposition that was in place before the first
//! one (usually the default: terminate) is restored.
//!
//! ```no_run
//! use greenlet_runtime::{signal, sync::Event};
//!
//! let stop = Event::new();
//! let s = stop.clone();
//! let _h = signal::signal(libc::SIGTERM, move || s.set()).unwrap();
//! stop.wait().unwrap(); // until SIGTERM
//! ```
//!
//! While a handler is registered the hub is never declared deadlocked
//! (`LoopExit`): a signal may still arrive and wake something.
//!
//! How it works: the process-wide `sigaction` handler only does
//! async-signal-safe things — it bumps a counter of every registration for
//! that signal and wakes its hub (`polling::Poller::notify`: an atomic flag
//! and, unless a wake-up is pending, one `write`). The hub sees the counters
//! at its next loop turn and spawns the handlers.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::hub::Hub;

pub(crate) mod table;

/// Why [`signal`] failed.
fn invalid(signum: libc::c_int, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("cannot handle signal {signum}: {why}"),
    )
}

/// The highest signal number of this system.
#[cfg(target_os = "linux")]
fn max_signal() -> libc::c_int {
    libc::SIGRTMAX()
}

/// FreeBSD's real-time signals end at 126 (`SIGRTMAX` of `<signal.h>`; not
/// in the `libc` crate).
#[cfg(target_os = "freebsd")]
fn max_signal() -> libc::c_int {
    126
}

/// No real-time signals elsewhere (macOS has `NSIG` 32): the classic ones.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn max_signal() -> libc::c_int {
    31
}

/// Runs `handler` in a new greenlet on this hub each time signal `signum`
/// arrives, until the returned handle is cancelled or dropped.
///
/// # Errors
/// `InvalidInput` for signals that cannot or must not be caught (`SIGKILL`,
/// `SIGSTOP`, and the fault signals `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`)
/// or numbers out of range; the `sigaction` error otherwise. There is no
/// limit on the number of registrations.
pub fn signal(signum: libc::c_int, handler: impl Fn() + 'static) -> io::Result<SignalHandler> {
    if !(1..=max_signal()).contains(&signum) {
        return Err(invalid(signum, "not a signal number"));
    }
    if [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ]
    .contains(&signum)
    {
        return Err(invalid(
            signum,
            "it cannot be caught, or is a fault that must not be deferred",
        ));
    }
    let id = Hub::with(|hub| hub.add_signal_handler(signum, Rc::new(handler)))?;
    Ok(SignalHandler {
        id,
        signum,
        cancelled: Cell::new(false),
        _hub_bound: PhantomData,
    })
}

/// A registered signal handler; cancelling or dropping it removes it. The
/// registration also ends with its hub (at thread exit or `shutdown`).
///
/// `!Send`: the registration belongs to the hub of the thread that made it
/// (dropped on another thread it could not remove it from its hub).
pub struct SignalHandler {
    id: u64,
    signum: libc::c_int,
    cancelled: Cell<bool>,
    _hub_bound: PhantomData<*const ()>,
}

impl SignalHandler {
    /// The signal number.
    pub fn signum(&self) -> libc::c_int {
        self.signum
    }

    /// Removes the handler; when it was the last one for its signal, the
    /// disposition from before the first registration is restored.
    /// Idempotent; never switches.
    pub fn cancel(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        // Not found: its hub was torn down, which released it.
        if let Some(r) = Hub::try_with(|hub| hub.remove_signal_handler(self.id)).flatten() {
            r.release();
        }
    }
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum)
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}
