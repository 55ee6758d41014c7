//! The loop: which greenlet runs next, and the housekeeping between turns.
//!
//! The main greenlet runs it on the thread's own stack (`run_loop`, inside
//! its `park`); a spawned greenlet that blocks runs the same loop on its own
//! stack while only switching is needed (`run_here`). Both share the hub's
//! queue, batch and housekeeping counters, so the order is one and the same.

use std::fmt;
use std::panic::Location;
use std::ptr;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use super::{Hub, POLL_EVERY};
use crate::interrupt::{BlockedForever, Interrupted};
use crate::task::{Co, Core, Rec, State, WakeReason};
use crate::timer::TimerAction;

/// Stack a greenlet must have left below its stack pointer to run the
/// loop on its own stack (see `Hub::run_here`).
const SCHEDULER_ROOM: usize = 16 * 1024;

/// Ready-queue length from which a resume prefetches for the next ones
/// (see `Hub::warm_next`). In a hand-off between two or three greenlets
/// everything is in cache already, and the prefetches would only cost.
const WARM_AHEAD_FROM: usize = 4;

impl Hub {
    /// Gives up the CPU until the current greenlet is resumed: the main
    /// greenlet runs the loop; a spawned greenlet resumed by the hub runs
    /// the loop itself as long as it can (`run_here`), then suspends to the
    /// hub; one resumed by such a greenlet suspends back to it.
    #[inline]
    pub(super) fn switch_out(&self, core: &Core, what: &dyn fmt::Display) {
        if core.is_main() {
            self.run_loop(what);
            core.continue_running();
            return;
        }
        // Where its stack will be resumed, near enough, for the loop's
        // prefetch (`warm_next`): the address of a local in this frame,
        // right above the switch.
        let probe = 0u8;
        core.set_parked_sp(ptr::addr_of!(probe) as usize);
        if !self.scheduler.get().is_null() || !self.run_here(core) {
            let y = core.yielder();
            // SAFETY: set by the coroutine body when it first ran; the
            // yielder lives on this greenlet's stack, and we are running on
            // that stack now.
            unsafe { (*y).suspend(()) };
        }
    }

    /// The loop, run on the stack of a spawned greenlet that is about to
    /// block and was resumed by the hub itself. Each greenlet it resumes
    /// suspends straight back here, so a hand-off between two greenlets is
    /// one switch instead of two (greenlet -> hub -> greenlet), and when
    /// this greenlet's own turn comes it goes on without any switch (true).
    /// The order is the hub's: the same queue, batches and housekeeping
    /// cadence. Whatever only the hub does — a turn's housekeeping (poll,
    /// timers, remote, signals), the main greenlet's turn, waiting when
    /// nothing is ready — ends it (false: the caller suspends to the hub,
    /// which carries on from the same place).
    fn run_here(&self, me: &Core) -> bool {
        // The loop's frames (and the drops of finished greenlets' records)
        // run on this stack: leave a greenlet that parked deep in its stack
        // to the hub.
        // The address of a local is the stack pointer, near enough (no
        // need to store anything there).
        let probe = 0u8;
        let sp = std::ptr::addr_of!(probe) as usize;
        if sp.saturating_sub(me.guard_page()) < SCHEDULER_ROOM {
            return false;
        }
        self.scheduler.set(me);
        let own_turn = loop {
            let mut left = self.batch_left.get();
            if left == 0 {
                // A new turn, which the hub runs if it needs housekeeping
                // (or nothing is ready); else its batch starts right here
                // (counted by `next_in_batch` below, not stored twice).
                left = self.ready.len();
                if left == 0 || self.runs_since_poll.get() >= POLL_EVERY {
                    break false;
                }
            }
            let Some(front) = self.ready.front() else {
                self.batch_left.set(0);
                continue;
            };
            // SAFETY: the queue's record keeps the core alive.
            if unsafe { &*front }.is_main() {
                self.batch_left.set(left);
                break false;
            }
            let g = self.next_in_batch(left).expect("front() was Some");
            if ptr::eq(front, me) {
                // Our own turn. (The queue's reference is dropped; the live
                // table and `park`'s own keep the record.)
                drop(g);
                me.continue_running();
                if self.monitoring.get() {
                    self.monitor_running(me);
                }
                break true;
            }
            self.run_one(g);
            if me.state() == State::Dead {
                break false; // discarded by a fork made below us
            }
        };
        self.scheduler.set(ptr::null());
        own_turn
    }

    /// Runs the loop until the main greenlet's turn comes.
    ///
    /// The loop's position survives across calls: `batch_left` counts the
    /// greenlets of the current turn's batch still to run, so when the main
    /// greenlet's turn comes mid-batch, the rest of the batch runs the next
    /// time the main greenlet blocks, before the next poll.
    fn run_loop(&self, what: &dyn fmt::Display) {
        loop {
            let left = self.batch_left.get();
            if left == 0 {
                self.turn(what);
                self.batch_left.set(self.ready.len());
                continue;
            }
            let Some(g) = self.next_in_batch(left) else {
                continue;
            };
            if g.core().is_main() {
                if self.monitoring.get() {
                    self.monitor_running(g.core());
                }
                return;
            }
            self.run_one(g);
        }
    }

    /// Takes the next greenlet of the current batch (`left` > 0 of it
    /// still to run), counting it against the batch and the housekeeping
    /// cadence. `None` ends the batch: the queue emptied under it.
    #[inline]
    fn next_in_batch(&self, left: usize) -> Option<Rec> {
        let Some(g) = self.ready.pop_front() else {
            self.batch_left.set(0);
            return None;
        };
        self.batch_left.set(left - 1);
        self.runs_since_poll.set(self.runs_since_poll.get() + 1);
        Some(g)
    }

    #[cold]
    fn monitor_running(&self, core: &Core) {
        if let Some(w) = &*self.monitor.borrow() {
            w.running(core);
        }
    }

    /// Resumes one greenlet until it parks, yields or finishes.
    #[inline]
    fn run_one(&self, g: Rec) {
        let core = g.core();
        if core.state() != State::Scheduled {
            return; // killed before it started; a stale queue entry
        }
        // SAFETY: the loop is the only user of the slot while it resumes the
        // greenlet (see `Core::co_slot`), and `g` keeps the record alive.
        let slot = unsafe { core.co_slot() };
        if slot.is_none() {
            if !self.launch(&g, slot) {
                return;
            }
        } else {
            // Only ahead of a resume: a burst of first runs (spawns)
            // gains nothing from it, as no stack of theirs was used yet.
            self.warm_next();
        }
        let Some(co) = slot.as_mut() else { return };
        core.resume();
        if self.monitoring.get() {
            self.monitor_running(core);
        }
        let prev = self.current.replace(g.as_ptr());
        let r = co.resume(());
        self.current.set(prev);
        match r {
            CoroutineResult::Return(outcome) => {
                self.finish(&g, outcome);
                if let Some(stack) = slot.take().map(Co::into_stack) {
                    self.stacks.borrow_mut().put(stack);
                }
            }
            // Discarded by a fork while it ran the loop (see
            // `discard_others`): now suspended, it is dropped without
            // running any more of its code.
            CoroutineResult::Yield(()) if core.state() == State::Dead => {
                std::mem::forget(slot.take());
            }
            CoroutineResult::Yield(()) => {}
        }
    }

    /// Prefetches what the next resumes will touch first: the top of the
    /// stack of the greenlet after this one (where it switched out), and
    /// the record of the one after that (whose parked stack pointer the
    /// next call reads). With hundreds of greenlets resumed in a batch,
    /// each one's stack was last touched a whole batch earlier, and its
    /// first lines come from far in the memory hierarchy: resumed without
    /// this, the instruction after the switch is the hottest of a server
    /// at 500 connections (docs/performance.md, "The stall at 500
    /// connections, prefetched").
    #[inline(always)]
    fn warm_next(&self) {
        if self.ready.len() < WARM_AHEAD_FROM {
            return;
        }
        if let Some(c) = self.ready.peek(1) {
            prefetch(c.cast());
            prefetch(c.cast::<u8>().wrapping_add(64));
        }
        if let Some(c) = self.ready.peek(0) {
            // SAFETY: the queue's record keeps the core alive.
            let sp = unsafe { &*c }.parked_sp();
            if sp != 0 {
                let p = sp as *const u8;
                for off in [-128isize, -64, 0, 64] {
                    prefetch(p.wrapping_offset(off));
                }
            }
        }
    }

    /// Builds the coroutine of a greenlet about to run for the first time,
    /// on the warmest free stack. False if it has nothing to run.
    #[cold]
    fn launch(&self, g: &Rec, slot: &mut Option<Co>) -> bool {
        let core = g.core();
        let (ready, page) = {
            let mut pool = self.stacks.borrow_mut();
            let taken = if core.take_stack_reservation() {
                pool.take_reserved()
            } else if let Some(own) = core.take_own_stack() {
                Ok(own)
            } else {
                return false;
            };
            (taken.and_then(|s| pool.ready_to_run(s)), pool.page())
        };
        let stack = match ready {
            Ok(s) => s,
            Err(e) => {
                self.fail_launch(g, e);
                return false;
            }
        };
        core.set_stack_bounds(stack.usable(page), stack.bottom);
        match g.launch(stack, slot) {
            Ok(()) => true,
            Err(stack) => {
                self.stacks.borrow_mut().put(stack);
                false
            }
        }
    }

    /// Ends a greenlet that cannot run (no guard page for its stack) as
    /// panicked, with the error as its payload, without running its code.
    #[cold]
    fn fail_launch(&self, g: &Rec, e: std::io::Error) {
        let core = g.core();
        log::error!("{} cannot run: {e}", core.describe());
        core.mark_ended();
        g.discard();
        core.extra().panic = Some(Box::new(e.to_string()));
        self.finish(g, crate::task::Outcome::Panicked);
    }

    /// The part of a loop turn after the batch: poll, timers, remote queue.
    #[inline]
    fn turn(&self, what: &dyn fmt::Display) {
        if !self.ready.is_empty() && self.runs_since_poll.get() < POLL_EVERY {
            return;
        }
        self.full_turn(what);
    }

    /// The part of a turn the busy case skips: I/O, timers, remote work,
    /// signals.
    fn full_turn(&self, what: &dyn fmt::Display) {
        self.runs_since_poll.set(0);
        let idlers = !self.idlers.borrow().is_empty();
        if !self.ready.is_empty() || idlers {
            // With no fd registered a poll could only drain a notify,
            // and remote work and signals are seen by their own flags
            // (the notify then ends the next blocking poll at once).
            if !self.reactor.is_empty() {
                self.reactor.poll(Some(Duration::ZERO));
            }
        } else {
            let next = self.timers.borrow_mut().next_deadline();
            let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
            if timeout.is_none() && !self.remote.has_work() && !self.can_be_woken() {
                let err = Interrupted::LoopExit(BlockedForever::new(what.to_string()));
                self.main
                    .core()
                    .set_wake_reason(WakeReason::Interrupted(err));
                self.schedule(self.main.clone());
                return;
            }
            let timeout = if self.remote.has_work() || self.signals.borrow().arrived() {
                Some(Duration::ZERO)
            } else {
                // Wake for the stack pool's decay too (not a wake-up source
                // for LoopExit: it never wakes a greenlet).
                match (timeout, self.stacks.borrow().decay_due()) {
                    (t, None) => t,
                    (None, Some(d)) => Some(d.saturating_duration_since(Instant::now())),
                    (Some(t), Some(d)) => Some(t.min(d.saturating_duration_since(Instant::now()))),
                }
            };
            let watched = self.monitor.borrow().clone();
            if let Some(w) = &watched {
                w.set_idle(true);
            }
            self.reactor.poll(timeout);
            if let Some(w) = &watched {
                w.set_idle(false);
                w.turn();
            }
        }
        // The clock is read only if something needs it.
        if self.timers.borrow().len() > 0 || self.stacks.borrow().decay_due().is_some() {
            let now = Instant::now();
            self.fire_timers(now);
            if self.stacks.borrow_mut().decay(now) {
                self.give_back_memory();
            }
        } else if self.stacks.borrow().has_excess() {
            // Start the decay clock for a pool that just grew.
            self.stacks.borrow_mut().decay(Instant::now());
        }
        self.drain_remote();
        self.dispatch_signals();
        if idlers && self.ready.is_empty() {
            // Nothing else to run after a look at I/O, timers and remote
            // work: the hub is idle (gevent's idle watcher).
            let woken = std::mem::take(&mut *self.idlers.borrow_mut());
            for w in woken {
                w.wake();
            }
        }
    }

    /// Whether anything outside the ready queue and timers could wake a
    /// parked greenlet.
    fn can_be_woken(&self) -> bool {
        self.reactor.waiters() > 0 || self.keepalive.get() > 0 || self.remote.handles() > 0
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            match due {
                None => return,
                Some(TimerAction::Wake(w)) => w.wake(),
                Some(TimerAction::Interrupt(rec, id)) => {
                    self.interrupt(rec, Interrupted::Timeout(id))
                }
                Some(TimerAction::Start(rec)) => {
                    if let Some(mut e) = rec.core().extra_if_any() {
                        e.start_timer = None;
                    }
                    if rec.core().state() == State::Delayed {
                        self.schedule(rec);
                    }
                }
            }
        }
    }

    fn drain_remote(&self) {
        if !self.remote.has_work() {
            return;
        }
        for job in self.remote.take_jobs() {
            if let Err(e) = self
                .spawn_task(job, None, None, Location::caller(), super::Start::Now)
                .map(drop)
            {
                log::error!("could not run a job sent through a Remote: {e}");
            }
        }
    }
}

/// Asks the CPU to bring the cache line at `p` close. Any address will do:
/// a prefetch reads nothing and never faults.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint has no memory effects and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above (`prfm` is a hint).
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}
