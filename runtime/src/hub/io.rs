//! The hub's side of cooperative I/O: registering fds with its reactor and
//! parking a greenlet until one is ready.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use super::{Hub, TimerGuard};
use crate::interrupt::Interrupted;
use crate::reactor::{Direction, Source};
use crate::task::Waker;
use crate::timer::TimerAction;

impl Hub {
    pub(crate) fn register_fd(&self, fd: RawFd) -> io::Result<Rc<Source>> {
        self.reactor.register(fd)
    }

    /// Deregisters `source`; returns its waiters, for the caller to fail.
    pub(crate) fn deregister_fd(&self, source: &Source) -> [Option<Waker>; 2] {
        self.reactor.deregister(source)
    }

    /// Takes `source`'s waiters, for the caller to fail.
    pub(crate) fn take_io_waiters(&self, source: &Source) -> [Option<Waker>; 2] {
        self.reactor.take_waiters(source)
    }

    /// Parks the current greenlet until `dir` of `source` may be ready or
    /// `deadline` passes (then `Ok`: the caller looks again).
    pub(crate) fn park_io(
        &self,
        source: &Source,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> Result<(), Interrupted> {
        let mut timer = TimerGuard::new();
        let _slot = WaiterSlot { source, dir };
        self.park(
            &format_args!("{} readiness of fd {}", dir.verb(), source.fd()),
            |w| {
                if let Some(d) = deadline {
                    timer.arm(d, TimerAction::Wake(w.clone()));
                }
                self.reactor.set_waiter(source, dir, w);
            },
        )
    }
}

/// Removes a waiter's own (stale) waker from its source when its wait
/// ends, also when the wait unwinds (a kill), so no waker lingers.
struct WaiterSlot<'a> {
    source: &'a Source,
    dir: Direction,
}

impl Drop for WaiterSlot<'_> {
    fn drop(&mut self) {
        let mine = Hub::try_with(|hub| hub.reactor.take_stale_waiter(self.source, self.dir));
        drop(mine);
    }
}
