//! The hub's signal handlers: registered through `signal::signal`, spawned
//! as greenlets at the turn after their signal arrived.

use std::io;
use std::panic::Location;
use std::rc::Rc;

use super::{Hub, Start};
use crate::signal::table::Registered;

impl Hub {
    /// Registers `f` for `signum` on this hub; while any handler is
    /// registered, the hub is never declared deadlocked.
    pub(crate) fn add_signal_handler(
        &self,
        signum: libc::c_int,
        f: Rc<dyn Fn()>,
    ) -> io::Result<u64> {
        let notifier = self.reactor.notifier();
        let id = self.signals.borrow_mut().add(signum, f, notifier)?;
        self.hold_keepalive();
        Ok(id)
    }

    /// Takes handler `id` out, for the caller to release (`None` if its
    /// hub already released it).
    pub(crate) fn remove_signal_handler(&self, id: u64) -> Option<Registered> {
        let r = self.signals.borrow_mut().remove(id)?;
        self.keepalive.set(self.keepalive.get() - 1);
        Some(r)
    }

    /// At teardown: releases every registration of this hub, so none
    /// outlives it (each held the hub's poller open) and the dispositions
    /// are restored.
    pub(crate) fn release_signals(&self) {
        let all = self.signals.borrow_mut().take_all();
        self.keepalive.set(self.keepalive.get() - all.len());
        for r in all {
            r.release();
        }
    }

    /// In a forked child: points this hub's registrations at its new
    /// notifier.
    pub(crate) fn retarget_signals(&self) {
        self.signals.borrow_mut().retarget(&self.reactor.notifier());
    }

    /// Spawns the handlers of signals that arrived (called once per turn).
    #[inline]
    pub(crate) fn dispatch_signals(&self) {
        let due = self.signals.borrow().take_due();
        for (f, n) in due {
            for _ in 0..n {
                let f = f.clone();
                let spawned =
                    self.spawn_task(move || f(), None, None, Location::caller(), Start::Now);
                if let Err(e) = spawned {
                    log::error!("could not run a signal handler: {e}");
                }
            }
        }
    }
}
