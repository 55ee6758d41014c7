//! Park / wake: the one blocking primitive everything else is built on.
//!
//! [`park`] suspends the current greenlet until a [`Waker`] handed out for
//! that park is woken, or the greenlet is interrupted (a timeout, a cancel,
//! a kill). Sync primitives, sockets, timers and joins are all park + wakers;
//! nothing else suspends.
//!
//! Each park has a sequence number, and every waker carries the number of
//! the park it was made for: waking a stale waker (from a wait that already
//! ended) never ends a later park.
//!
//! ```
//! use greenlet_runtime::{park, spawn, Waker};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! // A one-shot signal built on park/wake.
//! let slot: Rc<RefCell<Option<Waker>>> = Rc::default();
//! let s = slot.clone();
//! spawn(move || {
//!     if let Some(w) = s.borrow_mut().take() {
//!         w.wake();
//!     }
//! });
//! park(&"the signal", |w| *slot.borrow_mut() = Some(w)).unwrap();
//! ```

use std::fmt;

use crate::hub::Hub;
use crate::interrupt::Interrupted;
use crate::task::Rec;

pub use crate::task::Waker;

/// Suspends the current greenlet until a waker made for this park is woken.
///
/// `register` receives the waker before the greenlet suspends; store it
/// wherever the wake-up will come from (clone it for several sources).
/// `what` describes the wait in the [`Interrupted::LoopExit`] message
/// ("join of Greenlet-7 spawned at src/main.rs:12"); it is only formatted
/// when that error is produced, so pass `&format_args!(..)` freely.
///
/// Called from the thread's main greenlet, this runs the hub loop on the
/// thread's own stack until the main greenlet is woken.
///
/// # Errors
/// - [`Interrupted::Timeout`]: a timeout of this greenlet expired before or
///   during the wait (a timeout that expired earlier is delivered here,
///   without suspending);
/// - [`Interrupted::LinkedExited`]: a greenlet linked to this one died
///   before or during the wait (delivered like a timeout, in the order the
///   interruptions came);
/// - [`Interrupted::Cancelled`]: the waker was used with
///   [`Waker::interrupt`];
/// - [`Interrupted::LoopExit`]: nothing could ever wake this park;
/// - [`Interrupted::Unwinding`]: the thread is unwinding from a panic, so
///   the greenlet may not suspend; `register` is not called.
///
/// - [`Interrupted::Killed`]: the greenlet was killed inside
///   [`defer_kill`] (only there).
///
/// If the greenlet is killed while parked, `park` does not return: the
/// greenlet unwinds from here with a `GreenletExit` payload (except inside
/// [`defer_kill`]).
///
/// ```
/// use greenlet_runtime::{park, spawn, Interrupted};
///
/// // Woken by another greenlet:
/// let (tx, rx) = std::sync::mpsc::channel();
/// spawn(move || rx.recv().map(|w: greenlet_runtime::Waker| w.wake()));
/// park(&"a wake-up", |w| tx.send(w).unwrap()).unwrap();
///
/// // Nothing can ever wake it: an error naming the wait, not a hang.
/// match park(&"a signal nobody sends", |_w| {}) {
///     Err(Interrupted::LoopExit(e)) => assert!(e.waiting_on().contains("nobody sends")),
///     other => panic!("{other:?}"),
/// }
/// ```
#[inline]
pub fn park(what: &dyn fmt::Display, register: impl FnOnce(Waker)) -> Result<(), Interrupted> {
    Hub::with(|hub| hub.park(what, register))
}

/// Runs `f` with kills of the current greenlet deferred: for code that
/// blocks below a C-ABI frame (a monkey-patched libc call), which a kill's
/// unwind must not cross (unwinding out of an `extern "C"` function aborts).
///
/// Inside `f`, a kill does not unwind: the [`park`] it interrupts (or the
/// next one) returns `Err(Interrupted::Killed)`, and the kill stays
/// requested. It lands at the greenlet's first blocking call after `f`
/// returned (that call unwinds with `GreenletExit` as usual); a greenlet
/// that returns before blocking again is still recorded as killed. One
/// that instead parks inside `defer_kill` again (a loop retrying the
/// failed C call) cannot unwind there and must not spin: it is ended at
/// that park — recorded as killed, its stack abandoned without running the
/// drops of what it owns (they would have to unwind through C frames).
/// Timeouts are not affected: they end a park with `Interrupted::Timeout`
/// as always. A linked greenlet's death (`Interrupted::LinkedExited`) ends
/// a park inside with that error and is kept for the first park after `f`
/// too (a C caller cannot pass its details on); parks inside do not
/// deliver it again. Nests; costs two writes.
///
/// ```
/// use greenlet_runtime::{defer_kill, park, spawn, Interrupted};
///
/// let g = spawn(|| {
///     let r = defer_kill(|| park(&"forever", |_w| {}));
///     assert_eq!(r, Err(Interrupted::Killed));
///     // The kill lands here, at the next blocking call.
///     let _ = greenlet_runtime::sleep(std::time::Duration::from_secs(10));
///     unreachable!("the kill unwinds the sleep");
/// });
/// greenlet_runtime::yield_now(); // let it park
/// g.kill().unwrap();
/// assert!(g.killed());
/// ```
pub fn defer_kill<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Rec, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.core().set_kill_deferred(self.1);
        }
    }
    let rec = Hub::with(Hub::current);
    let before = rec.core().set_kill_deferred(true);
    let _restore = Restore(rec, before);
    f()
}
