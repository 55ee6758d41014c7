//! The hub: one per OS thread, created lazily on first use.
//!
//! It owns the ready queue (FIFO), the timer queue, the reactor, the stack
//! pool, the remote queue and the table of live greenlets. The loop runs on
//! the thread's own stack, inside the main greenlet's `park`: whenever the
//! main greenlet blocks, the loop runs until the main greenlet is woken.
//! A spawned greenlet that blocks runs the same loop on its own stack for
//! as long as only switching is needed (see `Hub::run_here`), so greenlets
//! hand off to each other in one switch, not two through the hub.
//!
//! One loop turn runs the greenlets that were ready at its start (a bounded
//! batch). Then, if the ready queue is empty, the hub polls the reactor (with
//! the timeout of the nearest timer), fires due timers, drains the remote
//! queue and dispatches signals. While greenlets keep the queue busy, it does
//! that (polling with a zero timeout) once at least [`POLL_EVERY`](crate::hub::POLL_EVERY) greenlets
//! have run since the last time, so I/O, timers and remote work are never
//! starved and a hand-off between greenlets pays for none of it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use crate::interrupt::{BlockedForever, Interrupted};
use crate::reactor::Reactor;
use crate::remote::RemoteShared;
use crate::signal::table::HubSignals;
use crate::stack::overflow::{self, AltStack, Overflowed};
use crate::stack::StackPool;
use crate::task::Waker;
use crate::task::{self, RunQueue};
use crate::task::{Core, GreenletExit, Outcome, Rec, State, WakeReason};
use crate::timer::Timers;

/// While greenlets keep the ready queue busy, the reactor is polled (with a
/// zero timeout), and timers, remote work and signals are handled, at the
/// end of the turn in which this many greenlets have run since the last time
/// (tokio's `event_interval` has the same default).
pub const POLL_EVERY: u32 = 61;

/// How many times teardown kills a greenlet that keeps catching the unwind
/// and blocking again before it abandons it.
const TEARDOWN_KILLS: u32 = 100;

/// Marks the hub pointer of a thread whose hub was already destroyed.
const DEAD: usize = 1;

thread_local! {
    /// The thread's hub; null before first use, `DEAD` after teardown.
    /// Const-initialised without a destructor, so it stays readable while
    /// other thread-locals are destroyed.
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    /// Tears the hub down when the thread exits.
    static GUARD: HubGuard = const { HubGuard };
}

struct HubGuard;

impl Drop for HubGuard {
    fn drop(&mut self) {
        destroy(DEAD as *const Hub);
    }
}

/// Tears down this thread's hub, if any, and leaves `then` as the hub
/// pointer: `DEAD` at thread exit, null after `shutdown` (a fresh hub is
/// made on next use).
pub(crate) fn destroy(then: *const Hub) {
    let p = HUB.with(|h| h.get());
    if p as usize <= DEAD {
        return;
    }
    // SAFETY: `p` came from `Box::into_raw` in `Hub::create` and is freed
    // only here, once (the pointer is replaced before the free).
    let hub = unsafe { &*p };
    hub.teardown();
    task::detach();
    HUB.with(|h| h.set(then));
    // SAFETY: as above; nothing borrows the hub any more (teardown ended
    // every greenlet and the pointer no longer leads here).
    drop(unsafe { Box::from_raw(p as *mut Hub) });
}

pub(crate) struct Hub {
    ready: RunQueue,
    /// The running greenlet; the main greenlet's record while the loop runs.
    /// A raw pointer, not an `Rc`, so switching costs no reference counting:
    /// the record is kept alive by `main`, or by `run_one` (or `teardown`)
    /// for as long as it is current.
    current: Cell<*const Core>,
    main: Rec,
    timers: RefCell<Timers>,
    reactor: Reactor,
    stacks: RefCell<StackPool>,
    remote: Arc<RemoteShared>,
    live: RefCell<LiveTable>,
    next_id: Cell<u64>,
    /// Greenlets run since the reactor was last polled.
    runs_since_poll: Cell<u32>,
    /// The spawned greenlet running the loop on its own stack, if any (see
    /// `run_here`); null otherwise. The greenlets it resumes are nested
    /// under it: they suspend back to it, not to the hub.
    scheduler: Cell<*const Core>,
    /// Greenlets of the current turn's batch not yet run.
    batch_left: Cell<usize>,
    /// Set during teardown: parks fail at once, the body lets forced
    /// unwinds through.
    closing: Cell<bool>,
    /// Outstanding external wake-up sources (thread-pool jobs and the like)
    /// that keep a waiting main greenlet from being declared deadlocked.
    keepalive: Cell<usize>,
    /// The blocking monitor's view of this hub, when it is on.
    monitor: RefCell<Option<Arc<crate::monitor::Watched>>>,
    /// `monitor` is set: the one check the loop makes per switch when the
    /// monitor is off.
    monitoring: Cell<bool>,
    /// Greenlets waiting in `idle()` for the hub to have nothing else to do.
    idlers: RefCell<Vec<Waker>>,
    /// Signal handlers registered on this hub (see `signal::table`).
    signals: RefCell<HubSignals>,
    /// The alternate signal stack this hub installed, if the thread had
    /// none (overflow reports run on it).
    _altstack: Option<AltStack>,
}

impl Hub {
    /// Runs `f` with the current thread's hub, created on first use.
    ///
    /// The borrow cannot leave `f`: the hub is freed by `destroy`, which
    /// runs only at thread exit or from `shutdown`, never inside `f` on the
    /// same stack.
    ///
    /// # Panics
    /// If called while the thread's hub is being destroyed at thread exit
    /// (from another thread-local's destructor) after it was torn down.
    #[inline]
    pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
        let p = HUB.with(|h| h.get());
        let p = if p as usize > DEAD { p } else { Hub::create(p) };
        // SAFETY: the hub lives until `destroy` frees it, and `destroy`
        // never runs inside `f` (see above); every caller is on this
        // thread.
        f(unsafe { &*p })
    }

    /// [`Hub::with`] for an operation that can fail: if the thread has no
    /// hub yet and one cannot be made (its poller's fds at the fd limit),
    /// that is `f`'s error instead of a panic.
    #[inline]
    pub(crate) fn with_io<R>(f: impl FnOnce(&Hub) -> std::io::Result<R>) -> std::io::Result<R> {
        let p = HUB.with(|h| h.get());
        let p = if p as usize > DEAD {
            p
        } else {
            Hub::try_create(p)?
        };
        // SAFETY: as in `with`.
        f(unsafe { &*p })
    }

    /// Runs `f` with the hub if it exists and is not destroyed; never
    /// creates one. For drop paths that may run during thread exit.
    #[inline]
    pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
        let p = HUB.try_with(|h| h.get()).ok()?;
        // SAFETY: as in `with`.
        (p as usize > DEAD).then(|| f(unsafe { &*p }))
    }

    #[cold]
    fn create(p: *const Hub) -> *const Hub {
        Hub::try_create(p).unwrap_or_else(|e| {
            panic!("greenlet: cannot create this thread's hub: the poller failed: {e}")
        })
    }

    /// Makes this thread's hub; the error of its poller if that cannot be
    /// made (`EMFILE`, ...).
    #[cold]
    fn try_create(p: *const Hub) -> std::io::Result<*const Hub> {
        assert!(
            p as usize != DEAD,
            "greenlet: this thread's hub was already destroyed (used from a thread-local destructor during thread exit)"
        );
        let hub = Box::new(Hub::new()?);
        let p = Box::into_raw(hub);
        HUB.with(|h| h.set(p));
        // SAFETY: the hub's ready queue stays where it is until `destroy`
        // frees the hub, after detaching it.
        unsafe { task::attach(&(*p).ready) };
        // Register the teardown; if thread-locals are already being destroyed
        // this fails and the hub is leaked rather than torn down too early.
        let _ = GUARD.try_with(|_| ());
        if let Some(limit) = crate::monitor::env_limit() {
            monitor(Some(limit));
        }
        Ok(p)
    }

    fn new() -> std::io::Result<Hub> {
        let reactor = Reactor::new()?;
        overflow::install(|addr, report| {
            Hub::try_with(|hub| hub.overflowed(addr).map(|g| report(&g)));
        });
        let main = Rec::main();
        let remote = Arc::new(RemoteShared::new(reactor.notifier()));
        Ok(Hub {
            ready: RunQueue::new(),
            current: Cell::new(main.as_ptr()),
            main,
            timers: RefCell::new(Timers::new()),
            reactor,
            stacks: RefCell::new(StackPool::new()),
            remote,
            live: RefCell::new(LiveTable::new()),
            next_id: Cell::new(1),
            runs_since_poll: Cell::new(0),
            scheduler: Cell::new(ptr::null()),
            batch_left: Cell::new(0),
            closing: Cell::new(false),
            keepalive: Cell::new(0),
            monitor: RefCell::new(None),
            monitoring: Cell::new(false),
            idlers: RefCell::new(Vec::new()),
            signals: RefCell::new(HubSignals::new()),
            _altstack: AltStack::ensure(),
        })
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// The greenlet running the loop on its own stack, or null.
    pub(crate) fn scheduler_core(&self) -> *const Core {
        self.scheduler.get()
    }

    /// The running greenlet's record.
    #[inline]
    pub(crate) fn current(&self) -> Rec {
        // SAFETY: `current` always points at a live record (see the field).
        unsafe { Rec::clone_from_ptr(self.current.get()) }
    }

    /// The running greenlet's core, without a reference count.
    #[inline]
    pub(crate) fn current_core(&self) -> &Core {
        // SAFETY: `current` always points at a live record (see the field),
        // which stays alive while the caller, running in it, uses it.
        unsafe { &*self.current.get() }
    }

    /// Whether `rec` is the running greenlet.
    #[inline]
    pub(crate) fn is_current(&self, rec: &Rec) -> bool {
        ptr::addr_eq(rec.as_ptr(), self.current.get())
    }

    pub(crate) fn live_snapshot(&self) -> Vec<Rec> {
        self.live.borrow().iter().cloned().collect()
    }

    pub(crate) fn unregister_live(&self, rec: &Rec) {
        let removed = self.live.borrow_mut().remove(rec.core().live_key());
        drop(removed);
    }

    /// After greenlets were discarded (fork): drops timers and I/O waits
    /// that could only wake dead greenlets, so they neither fire for
    /// nothing nor keep the hub from reporting a deadlock.
    pub(crate) fn forget_dead_waits(&self) {
        let dropped = self.timers.borrow_mut().retain_live();
        drop(dropped);
        self.reactor.drop_stale_waiters();
    }

    /// Counts an outstanding external wake-up source (a thread-pool job):
    /// while any is held, a waiting main greenlet is not deadlocked.
    pub(crate) fn hold_keepalive(&self) {
        self.keepalive.set(self.keepalive.get() + 1);
    }

    /// Releases what [`Hub::hold_keepalive`] counted.
    pub(crate) fn release_keepalive(&self) {
        self.keepalive.set(self.keepalive.get().saturating_sub(1));
    }

    /// The remote queue, for senders on other threads.
    pub(crate) fn remote_shared(&self) -> Arc<RemoteShared> {
        self.remote.clone()
    }

    /// The live greenlet with this key in the live table and this id (a
    /// key is reused once its greenlet died), or the main greenlet for id 0.
    pub(crate) fn live_by_key(&self, key: usize, id: u64) -> Option<Rec> {
        if id == 0 {
            return Some(self.main.clone());
        }
        let live = self.live.borrow();
        live.get(key).filter(|r| r.core().id() == id).cloned()
    }

    #[inline(always)] // on every spawn's path
    pub(crate) fn register_live(&self, rec: &Rec) {
        let key = self.live.borrow_mut().insert(rec.clone());
        rec.core().set_live_key(key);
    }

    /// Puts a greenlet at the back of the ready queue.
    #[inline]
    pub(crate) fn schedule(&self, rec: Rec) {
        self.ready.schedule(rec);
    }

    /// Ends the wait of `rec` with `e` if it is parked, else keeps `e` for
    /// its next wait (after those already kept, so each interruption is
    /// delivered once, in the order they came); a dead greenlet gets
    /// nothing.
    pub(crate) fn interrupt(&self, rec: Rec, e: Interrupted) {
        let core = rec.core();
        match core.state() {
            State::Dead => {}
            State::Parked => {
                core.set_wake_reason(WakeReason::Interrupted(e));
                self.schedule(rec);
            }
            _ => core.push_pending(e),
        }
    }

    /// Records a greenlet's death and runs its links and joiners.
    #[inline(always)] // every greenlet's last step: no frame of its own
    pub(crate) fn finish(&self, rec: &Rec, outcome: Outcome) {
        let core = rec.core();
        core.mark_dead(outcome);
        if self.monitoring.get() {
            if let Some(w) = &*self.monitor.borrow() {
                w.forget(core);
            }
        }
        let removed = self.live.borrow_mut().remove(core.live_key());
        drop(removed);
        self.on_death(rec);
    }

    /// The park of the current greenlet (what the public `park` does).
    pub(crate) fn park(
        &self,
        what: &dyn fmt::Display,
        register: impl FnOnce(Waker),
    ) -> Result<(), Interrupted> {
        let rec = self.current();
        let core: *const Core = rec.core();
        // SAFETY: the current greenlet's record stays alive while it runs
        // and while it is parked: the live table (or `Hub::main`) holds it
        // until it is dead, and it cannot die inside this call. (So `rec`
        // itself can move into the waker below.)
        let core: &Core = unsafe { &*core };
        if let Err(e) = enter_wait(core) {
            if e == Interrupted::Killed && !core.is_main() {
                // Killed below a C-ABI frame, told so (`Killed`), and
                // blocking below one again instead of returning to its own
                // code (a loop that ignores the error): it can neither
                // unwind nor be left to spin, so it ends here.
                drop(rec);
                self.abandon(core);
            }
            return Err(e);
        }
        if self.closing.get() {
            return self.park_at_teardown(core, what);
        }
        register(Waker::for_park(rec));
        core.mark_parked();
        self.switch_out(core, what);
        // Taken before a kill unwinds from here: `Waker::wake` relies on the
        // reason being `Woken` whenever a greenlet parks.
        let reason = core.end_park();
        if core.kill_requested() {
            if let WakeReason::Interrupted(e) = reason {
                // The kill wins this park; the interruption it displaced
                // is kept for the next one (a `Timeout` that fired must
                // not count as delivered: `with_timeout` would report
                // `Elapsed` for a wait that ended `Killed`).
                core.push_pending(e);
            }
            return kill_or_defer(core);
        }
        match reason {
            WakeReason::Woken => Ok(()),
            // Below a C frame the link's details cannot reach the greenlet's
            // code: the call fails, and the interruption is kept for the
            // next park outside `defer_kill`.
            WakeReason::Interrupted(e @ Interrupted::LinkedExited(_)) if core.kill_deferred() => {
                core.push_pending(e.clone());
                Err(e)
            }
            WakeReason::Interrupted(e) => Err(e),
        }
    }

    /// A park during teardown: a spawned greenlet goes back to teardown
    /// (which kills it again); the park fails.
    #[cold]
    fn park_at_teardown(&self, core: &Core, what: &dyn fmt::Display) -> Result<(), Interrupted> {
        if !core.is_main() {
            self.back_to_teardown(core);
        }
        Err(Interrupted::LoopExit(BlockedForever::new(format!(
            "{what} (the hub is shutting down)"
        ))))
    }

    /// Ends the current greenlet, killed, without unwinding (see `park`):
    /// it is recorded as killed (joiners and links run), and suspends for
    /// good; its resumer finds it dead and forgets its coroutine, so what
    /// its stack owns is leaked rather than dropped through C frames.
    #[cold]
    fn abandon(&self, core: &Core) -> ! {
        let rec = self.current();
        self.finish(&rec, Outcome::Killed);
        drop(rec);
        let y = core.yielder();
        // SAFETY: a spawned greenlet (not the main one) running on its own
        // stack, where its yielder lives (set when its body first ran).
        unsafe { (*y).suspend(()) };
        unreachable!("an abandoned greenlet was resumed")
    }

    /// `sleep(ZERO)`: a yield that is also a blocking point, so it delivers
    /// a pending interruption (before yielding, or one that came meanwhile)
    /// and a kill lands here.
    pub(crate) fn yield_wait(&self) -> Result<(), Interrupted> {
        let rec = self.current();
        enter_wait(rec.core())?;
        self.yield_now();
        match rec.core().take_pending() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Parks the current greenlet until the hub has nothing else to do; see
    /// [`crate::idle`].
    pub(crate) fn idle(&self) -> Result<(), Interrupted> {
        let r = self.park(&"idle()", |w| self.idlers.borrow_mut().push(w));
        if r.is_err() {
            let stale: Vec<_> = {
                let mut idlers = self.idlers.borrow_mut();
                let (stale, live) = std::mem::take(&mut *idlers)
                    .into_iter()
                    .partition(Waker::is_stale);
                *idlers = live;
                stale
            };
            drop(stale);
        }
        r
    }

    /// Moves the current greenlet to the back of the ready queue and runs
    /// the others that are ready; see [`crate::yield_now`].
    pub(crate) fn yield_now(&self) {
        if std::thread::panicking() {
            return;
        }
        // No reference of its own: the queue's (moved in below) and then
        // the live table (or `Hub::main`) keep the record alive while it
        // runs, as in `park`.
        let core = self.current_core();
        if core.kill_requested() && core.kill_deferred() {
            return; // killed below a C-ABI frame: leave at once
        }
        core.clear_unwinding();
        if self.closing.get() {
            if !core.is_main() {
                self.back_to_teardown(core);
            }
            return;
        }
        self.schedule(self.current());
        self.switch_out(core, &"yield_now");
        if core.kill_requested() && !core.kill_deferred() {
            start_unwind(core);
        }
    }

    /// Kills a greenlet: see `GreenletRef::kill_nowait`.
    pub(crate) fn kill(&self, rec: &Rec) {
        let core = rec.core();
        if core.state() == State::Dead || core.is_unwinding() {
            return;
        }
        if !core.has_started() {
            self.drop_unstarted(rec);
            self.finish(rec, Outcome::Killed);
            return;
        }
        if self.is_current(rec) && !core.kill_deferred() {
            start_unwind(core);
        }
        core.request_kill();
        if core.state() == State::Parked {
            self.schedule(rec.clone());
        }
    }

    /// Ends a greenlet that never ran: it never will. Its closure is
    /// dropped now, in the caller's context (it has no stack of its own to
    /// run it on), its start timer cancelled and its reserved stack given
    /// back. Marked dead first, so that the closure's drop (user code)
    /// sees it dead. (Kill and fork both end greenlets this way.)
    pub(crate) fn drop_unstarted(&self, rec: &Rec) {
        let core = rec.core();
        if let Some(t) = core.extra_if_any().and_then(|mut e| e.start_timer.take()) {
            self.cancel_timer(t);
        }
        core.mark_ended();
        rec.discard();
        if core.take_stack_reservation() {
            self.stacks.borrow_mut().unreserve();
        } else if let Some(stack) = core.take_own_stack() {
            self.stacks.borrow_mut().put(stack);
        }
    }

    /// Ends every greenlet at thread exit: each is killed (its `Drop`s run
    /// on its own stack), then the queues are emptied.
    pub(crate) fn teardown(&self) {
        self.closing.set(true);
        self.remote.close();
        loop {
            let recs: Vec<Rec> = self.live.borrow_mut().take_all();
            if recs.is_empty() {
                break;
            }
            for rec in recs {
                // Drained: its death must not remove a later entry that
                // reused the key.
                rec.core().set_live_key(usize::MAX);
                self.end_at_teardown(&rec);
            }
        }
        drop(self.ready.take_all());
        self.release_signals();
        self.reactor.detach_all();
        let timers = std::mem::replace(&mut *self.timers.borrow_mut(), Timers::new());
        drop(timers);
    }

    /// Kills one greenlet at teardown, on its own stack. One that catches
    /// the unwind and blocks again (a supervisor catching every panic)
    /// comes back here through `back_to_teardown` and is killed again, up
    /// to `TEARDOWN_KILLS` times; then it is abandoned (its stack leaked, an
    /// error logged) so that the thread, and the process, can end.
    fn end_at_teardown(&self, rec: &Rec) {
        let core = rec.core();
        // A Drop that panics during teardown must not abort the teardown
        // of the others.
        let Some(mut co) = core.take_co() else {
            core.mark_ended();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| rec.discard()));
            return;
        };
        if !co.started() {
            core.mark_ended();
            // Drops the closure; no code of the greenlet runs.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| co.force_unwind()));
            return;
        }
        for _ in 0..TEARDOWN_KILLS {
            core.request_kill();
            core.continue_running();
            let prev = self.current.replace(rec.as_ptr());
            let r = panic::catch_unwind(AssertUnwindSafe(|| co.resume(())));
            self.current.set(prev);
            match r {
                Ok(corosensei::CoroutineResult::Yield(())) => {}
                // Its death is recorded here, by its resumer, as the loop
                // records deaths.
                Ok(corosensei::CoroutineResult::Return(outcome)) => {
                    self.finish(rec, outcome);
                    return;
                }
                Err(_) => {
                    core.mark_ended();
                    return;
                }
            }
            if core.state() == State::Dead {
                // Killed below a C-ABI frame and blocking there again, it
                // ended itself without unwinding (`abandon`): dropping the
                // coroutine would unwind through the C frames.
                std::mem::forget(co);
                return;
            }
        }
        core.mark_ended();
        log::error!(
            "abandoned {} at hub teardown: it caught the kill's unwind and blocked again {TEARDOWN_KILLS} times; its stack is leaked",
            core.describe()
        );
        // Dropping a suspended coroutine would unwind it once more, into
        // the same loop.
        std::mem::forget(co);
    }

    /// In a greenlet that teardown resumed to kill it and that blocked
    /// again instead of ending (it caught the unwind): hands control back
    /// to `end_at_teardown`, never to the loop, and unwinds again when
    /// resumed.
    fn back_to_teardown(&self, core: &Core) {
        core.mark_parked();
        let y = core.yielder();
        // SAFETY: set by the coroutine body when it first ran; the yielder
        // lives on this greenlet's stack, and we are running on that stack
        // (a non-main greenlet runs only inside its coroutine).
        unsafe { (*y).suspend(()) };
        // Below a C-ABI frame (`defer_kill`) it must not unwind: its call
        // fails, and its next blocking call ends it (`abandon`).
        if core.kill_requested() && !core.kill_deferred() {
            start_unwind(core);
        }
    }

    /// If `addr` is in the guard page of the running greenlet's stack, what
    /// to report about it. Called from the SIGSEGV handler: reads only,
    /// takes no borrow that could panic, allocates nothing.
    pub(crate) fn overflowed(&self, addr: usize) -> Option<Overflowed<'_>> {
        // SAFETY: `current` points at a live record (see the field); the
        // handler runs on this thread while the faulting greenlet is stopped
        // mid-instruction, and reads only plain fields.
        let core = unsafe { &*self.current.get() };
        let guard = core.guard_page();
        let page = crate::stack::page_size_cached();
        if guard == 0 || addr < guard || addr >= guard + page {
            return None;
        }
        Some(Overflowed {
            id: core.id(),
            name: core.given_name(),
            stack_size: core.stack_size(),
        })
    }
}

/// The checks at the start of every wait (`park`, `sleep(ZERO)`): none
/// while the thread unwinds; a requested kill lands (or, inside
/// `defer_kill`, fails the wait with `Killed`); an interruption that came
/// earlier is delivered without suspending (inside `defer_kill` only a
/// timeout: see `defer_kill`).
#[inline]
fn enter_wait(core: &Core) -> Result<(), Interrupted> {
    if std::thread::panicking() {
        return Err(Interrupted::Unwinding);
    }
    // Not panicking, so an earlier kill's unwind was caught: the greenlet
    // may be killed again.
    core.clear_unwinding();
    // The common case, one test of each flag: no kill, not in
    // `defer_kill`, nothing kept.
    if core.kill_requested() || core.kill_deferred() || core.may_have_pending() {
        return enter_wait_slow(core);
    }
    Ok(())
}

/// The rest of `enter_wait`, when a kill, `defer_kill` or an interruption
/// kept for this wait may be in play.
#[cold]
fn enter_wait_slow(core: &Core) -> Result<(), Interrupted> {
    if core.kill_requested() {
        // A kill deferred by `defer_kill` lands at the next blocking call.
        return kill_or_defer(core);
    }
    let pending = if core.kill_deferred() {
        core.take_pending_timeout()
    } else {
        core.take_pending()
    };
    match pending {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A requested kill of the current greenlet, at a blocking point: unwinds,
/// or inside `defer_kill` fails the wait with `Killed` and leaves the kill
/// requested for the next blocking point outside.
fn kill_or_defer(core: &Core) -> Result<(), Interrupted> {
    if core.kill_deferred() {
        return Err(Interrupted::Killed);
    }
    start_unwind(core)
}

/// Starts a kill's unwind of the current greenlet.
fn start_unwind(core: &Core) -> ! {
    core.begin_unwind();
    panic::resume_unwind(Box::new(GreenletExit))
}

mod config;
mod death;
mod fork;
mod info;
mod io;
mod live;
mod memory;
mod run;
mod signals;
mod spawn;
mod timers;

use live::LiveTable;
pub(crate) use spawn::Start;
pub(crate) use timers::TimerGuard;

/// Whether this thread has a hub, without creating one: `false` before its
/// first use, after [`crate::process::shutdown`] until the next use, and
/// during thread exit once it was torn down. A thread-local read; never
/// allocates, never panics (also from a thread-local destructor or a
/// signal handler).
#[inline]
pub fn exists() -> bool {
    Hub::try_with(|_| ()).is_some()
}

pub use crate::remote::{Remote, RemoteError};
pub use config::{
    default_stack_size, monitor, set_default_stack_size, set_max_stacks, set_stack_guard,
    stack_guard, trim_stacks,
};

impl Remote {
    /// A handle to the current thread's hub.
    pub fn current() -> Remote {
        Hub::with(|hub| Remote::new(hub.remote.clone()))
    }
}
pub use crate::thread::{spawn_thread, HubThread};
pub use info::{run_info, stats, GreenletInfo, HubStats};
