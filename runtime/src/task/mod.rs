//! The task kernel: the greenlet record and its lifecycle, the waker, the
//! ready queue, and the one hook through which a wake reaches the
//! scheduler.
//!
//! This is the bottom layer of the runtime. It knows no hub: the hub
//! attaches its ready queue to the thread ([`attach`]), and every wake goes
//! through [`schedule`] into it. (tokio's `Schedule` trait and gevent's
//! per-thread hub reference play the same part.) The records, wakers and
//! queue refer to each other, and that circle stays inside this module.
//!
//! A greenlet's life, as the record's transition methods write it:
//!
//! ```text
//! spawned ─┬─> scheduled ─> running ─┬─> parked ─> scheduled ─> ...
//!          │   (ready queue)         ├─> scheduled (yield)
//!  delayed ┘                         └─> dead (returned, panicked, killed)
//! ```
//!
//! Killed before it ever ran, a greenlet goes straight to dead: its
//! closure is dropped in the killer's context and it never gets a stack.

use std::cell::Cell;
use std::ptr;

mod alloc;
mod core;
mod link;
mod record;
mod runqueue;
mod waker;

pub(crate) use self::core::{Co, Core, Outcome, State, WakeReason};
pub(crate) use alloc::release as release_records;
pub(crate) use link::{Link, LinkAction, LinkWhen};
pub(crate) use record::Rec;
pub(crate) use runqueue::RunQueue;
pub use waker::Waker;

/// The payload a killed greenlet unwinds with (gevent's `GreenletExit`).
///
/// `kill` resumes the target at its blocking point and unwinds it with
/// `std::panic::resume_unwind(Box::new(GreenletExit))` (no panic message is
/// printed). The unwind is caught at the greenlet's base and recorded as
/// killed, which counts as successful. Code that catches it with
/// `catch_unwind` may block normally afterwards; if the greenlet then
/// returns normally, that value is its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GreenletExit;

/// The public view of a greenlet's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GreenletState {
    /// Spawned but has not run yet (waiting for its first turn, or for its
    /// `spawn_later` delay).
    NotStarted,
    /// Started and waiting in the ready queue for its next turn.
    Ready,
    /// Running now (it is the current greenlet).
    Running,
    /// Blocked in a wait (sleep, join, I/O, a lock, ...).
    Parked,
    /// Finished: returned, panicked or was killed.
    Dead,
}

thread_local! {
    /// The ready queue of this thread's scheduler; null while it has none.
    /// Const-initialised without a destructor, like the hub pointer.
    static READY: Cell<*const RunQueue> = const { Cell::new(ptr::null()) };
}

/// Makes `queue` the one this thread's wakes go to.
///
/// # Safety
/// `queue` must stay alive, at the same address, until [`detach`].
pub(crate) unsafe fn attach(queue: *const RunQueue) {
    READY.with(|r| r.set(queue));
}

/// Ends what [`attach`] began: wakes from now on are dropped (nothing can
/// run them).
pub(crate) fn detach() {
    let _ = READY.try_with(|r| r.set(ptr::null()));
}

/// The one way a wake reaches the scheduler: `rec` goes to the back of the
/// thread's ready queue.
#[inline]
pub(crate) fn schedule(rec: Rec) {
    let q = READY.with(Cell::get);
    if !q.is_null() {
        // SAFETY: attached, so alive until `detach` (see `attach`); only
        // this thread uses it.
        unsafe { &*q }.schedule(rec);
    }
}
