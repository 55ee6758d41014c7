//! The hub in a forked child: a new poller, and only the forking greenlet
//! (with the main greenlet) left alive.

use std::io;

use super::Hub;
use crate::task::Outcome;

impl Hub {
    /// Makes this hub usable in a child process: a new poller with every
    /// fd registered again, the remote queue, signal delivery and the
    /// thread pool reset (see `process::reinit`). `fresh`: called right
    /// after `fork`, so the parent poller's fd numbers are still its own
    /// and their copies can be closed (see `reactor::forget_inherited`).
    pub(crate) fn after_fork(&self, fresh: bool) -> io::Result<()> {
        let (poller, old) = self.reactor.reinit()?;
        self.remote.after_fork(poller);
        self.retarget_signals();
        // Only now: until the signal handlers were retargeted, one could
        // still notify through the old poller.
        crate::reactor::forget_inherited(old, fresh);
        crate::threadpool::after_fork();
        // The thread-pool jobs counted were the parent's; only signal
        // handlers still count.
        self.keepalive.set(self.signals.borrow().len());
        Ok(())
    }

    /// In a forked child: drops every greenlet except the current one and
    /// the main greenlet, without running their code.
    pub(crate) fn discard_others(&self) {
        let me = self.current();
        let scheduler = self.scheduler_core();
        for rec in self.live_snapshot() {
            if rec.ptr_eq(&me) || rec.core().is_main() {
                continue;
            }
            let core = rec.core();
            if !core.has_started() {
                self.drop_unstarted(&rec);
            } else if std::ptr::eq(core, scheduler) {
                // Running the loop, below `me` on this very chain of
                // stacks: marked dead here, its coroutine is dropped
                // unrun once it has suspended (see `Hub::run_one`).
            } else if let Some(co) = core.take_co() {
                // Not dropped: dropping would unwind it (run its code).
                std::mem::forget(co);
            }
            core.mark_dead(Outcome::Killed);
            self.unregister_live(&rec);
            self.wake_joiners(&rec);
        }
        self.forget_dead_waits();
    }
}
