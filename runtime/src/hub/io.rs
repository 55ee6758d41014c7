//! The hub's side of cooperative I/O: registering fds with its reactor and
//! parking a greenlet until one is ready.

use std::fmt;
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
    ///
    /// Without a deadline (the common case) there is no timer guard to
    /// build, check and drop: that case is a function of its own, with a
    /// smaller frame (144 bytes instead of 176) and fewer instructions.
    #[inline]
    pub(crate) fn park_io(
        &self,
        source: &Source,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> Result<(), Interrupted> {
        match deadline {
            None => self.park_io_untimed(source, dir),
            Some(d) => self.park_io_until(source, dir, d),
        }
    }

    fn park_io_untimed(&self, source: &Source, dir: Direction) -> Result<(), Interrupted> {
        let _slot = WaiterSlot { source, dir };
        let what = IoWait {
            dir,
            fd: source.fd(),
        };
        self.park(&what, |w| self.reactor.set_waiter(source, dir, w))
    }

    #[inline(never)]
    fn park_io_until(
        &self,
        source: &Source,
        dir: Direction,
        deadline: Instant,
    ) -> Result<(), Interrupted> {
        let mut timer = TimerGuard::new();
        let _slot = WaiterSlot { source, dir };
        let what = IoWait {
            dir,
            fd: source.fd(),
        };
        self.park(&what, |w| {
            timer.arm(deadline, TimerAction::Wake(w.clone()));
            self.reactor.set_waiter(source, dir, w);
        })
    }

    /// Parks the current greenlet until one of `waits` (a source and a
    /// direction each) may be ready or `deadline` passes (then `Ok`: the
    /// caller looks again). One waker serves every slot; the others are
    /// taken back when the wait ends.
    pub(crate) fn park_io_any(
        &self,
        waits: &[(&Source, Direction)],
        deadline: Option<Instant>,
    ) -> Result<(), Interrupted> {
        let mut timer = TimerGuard::new();
        let _slots: Vec<WaiterSlot<'_>> = waits
            .iter()
            .map(|&(source, dir)| WaiterSlot { source, dir })
            .collect();
        let fds = FdList(waits);
        self.park(&format_args!("readiness of {fds}"), |w| {
            if let Some(d) = deadline {
                timer.arm(d, TimerAction::Wake(w.clone()));
            }
            for &(source, dir) in waits {
                self.reactor.set_waiter(source, dir, w.clone());
            }
        })
    }
}

/// "read of fd 3, write of fd 4", for the deadlock message.
struct FdList<'a>(&'a [(&'a Source, Direction)]);

impl std::fmt::Display for FdList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (source, dir)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} of fd {}", dir.verb(), source.fd())?;
        }
        Ok(())
    }
}

/// What an I/O wait waits for, for the `LoopExit` message: formatted only
/// if that error is made, and smaller on the parked stack than the
/// `fmt::Arguments` of a `format_args!`.
struct IoWait {
    dir: Direction,
    fd: RawFd,
}

impl fmt::Display for IoWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} readiness of fd {}", self.dir.verb(), self.fd)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_wait_names_its_direction_and_fd() {
        let w = IoWait {
            dir: Direction::Write,
            fd: 7,
        };
        assert_eq!(w.to_string(), "write readiness of fd 7");
    }
}
