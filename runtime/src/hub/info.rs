//! What a hub can tell about itself: its live greenlets and its counters.

use std::fmt;
use std::panic::Location;

use super::Hub;
use crate::task::GreenletState;

impl Hub {
    /// A snapshot of the live greenlets.
    pub(crate) fn run_info(&self) -> Vec<GreenletInfo> {
        self.live
            .borrow()
            .iter()
            .map(|rec| {
                let core = rec.core();
                GreenletInfo {
                    id: core.id(),
                    name: core.name().into_owned(),
                    state: core.public_state(),
                    spawned_at: core.location(),
                }
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> HubStats {
        let t = self.timers.borrow();
        HubStats {
            greenlets: self.live.borrow().len(),
            ready: self.ready.len(),
            timers: t.len(),
            timer_queue: t.queue_len(),
            io_waiters: self.reactor.waiters(),
            free_stacks: self.stacks.borrow().len(),
            live_stacks: self.stacks.borrow().live(),
        }
    }
}

/// One live greenlet, as listed by [`run_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreenletInfo {
    /// Its id.
    pub id: u64,
    /// Its name (`Greenlet-<id>` unless named).
    pub name: String,
    /// Its state.
    pub state: GreenletState,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
}

impl fmt::Display for GreenletInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {:?} spawned at {}",
            self.id, self.name, self.state, self.spawned_at
        )
    }
}

/// Lists every live (spawned, not yet dead) greenlet of this thread's hub:
/// id, name, state and spawn location. The main greenlet is not listed.
pub fn run_info() -> Vec<GreenletInfo> {
    Hub::with(Hub::run_info)
}

/// Counters of this thread's hub, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Live spawned greenlets.
    pub greenlets: usize,
    /// Entries in the ready queue.
    pub ready: usize,
    /// Armed timers.
    pub timers: usize,
    /// Entries in the timer queue, including cancelled ones awaiting lazy
    /// deletion (bounded by a small multiple of `timers`).
    pub timer_queue: usize,
    /// Greenlets waiting for I/O readiness.
    pub io_waiters: usize,
    /// Free stacks held by the pool.
    pub free_stacks: usize,
    /// Stacks in use by live greenlets.
    pub live_stacks: usize,
}

/// This thread's hub counters.
pub fn stats() -> HubStats {
    Hub::with(Hub::stats)
}
