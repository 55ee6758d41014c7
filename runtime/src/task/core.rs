//! The greenlet core: the untyped part of a greenlet record, what the hub
//! knows of one greenlet (id, name, state, the coroutine...), and
//! its lifecycle. Its fields are private to the task kernel: the rest of
//! the runtime reads plain data through getters and changes the rest
//! through transition methods named after what it does.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell, RefMut, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::Location;

use corosensei::{Coroutine, Yielder};

use super::record::{BodyOps, MainBody};
use super::{Link, Waker};
use crate::interrupt::{Interrupted, TimeoutId};
use crate::stack::Stack;
use crate::timer::handle::TimerHandle;

/// A greenlet's coroutine; it returns how the greenlet ended.
pub(crate) type Co = Coroutine<(), (), Outcome, Stack>;

/// Internal scheduling state. `Scheduled` means "in the ready queue".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Delayed,
    Scheduled,
    Running,
    Parked,
    Dead,
}

/// How a greenlet ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Value,
    Killed,
    Panicked,
}

/// Why a parked greenlet was scheduled.
#[derive(Debug, Default)]
pub(crate) enum WakeReason {
    #[default]
    Woken,
    Interrupted(Interrupted),
}

/// The shared record of one greenlet (the untyped part).
///
/// `repr(C)`, in this order, because of where the fields sit in the cache:
/// record blocks are aligned to a cache line (see `alloc.rs`), and a
/// server with many connections wakes a whole batch of greenlets before
/// the first of them runs, so each record's lines are evicted between its
/// wake and its resume. The first line holds what a wake touches (state,
/// park number) and what the resume reads first (the coroutine); the
/// second line the rest of a resume-and-park (count, wake reason, extras,
/// yielder, guard page). A wake then misses one line and a resume two;
/// the rest of the record (name, spawn data) is not touched on that path.
/// Its size is memory traffic too: 176 bytes, so that with a body of up to
/// 16 bytes a record takes three cache lines (a test pins it).
#[repr(C)]
pub(crate) struct Core {
    // First line: the wake's fields and the coroutine.
    state: Cell<State>,
    started: Cell<bool>,
    kill_requested: Cell<bool>,
    /// Between the start of a kill's unwind and the end of it (or its being
    /// caught); a second kill meanwhile does nothing.
    unwinding: Cell<bool>,
    /// Inside [`crate::defer_kill`]: a kill makes `park` fail with
    /// `Interrupted::Killed` instead of unwinding, and stays requested.
    /// (Set and restored by `defer_kill`'s scope, not a state transition.)
    kill_deferred: Cell<bool>,
    outcome: Cell<Outcome>,
    /// Interruptions may be kept in `Extra::pending` for its next wait:
    /// every park tests this, and `Extra` is also there for other reasons
    /// (joiners, links), so its presence alone would send those parks
    /// down the slow path. Set when one is kept, cleared when none is left.
    pending: Cell<bool>,
    is_main: bool,
    /// Sequence number of the current (or next) park; wakers carry it.
    park_seq: Cell<u32>,
    /// The greenlet that spawned this one, weakly (see `spawn_hooks.rs`):
    /// its key in the live table and its id (`spawner_id`, below); both
    /// `MAX` for nobody.
    spawner_key: u32,
    /// The coroutine: `None` before the first run (it is built then, so a
    /// greenlet that has not run touches no stack memory) and once finished.
    /// Resumed in place by the hub; see [`Core::co_slot`].
    co: ManuallyDrop<UnsafeCell<Option<Co>>>,
    // Second line: the rest of a resume and the next park.
    /// Strong references ([`Rec`](super::Rec)s) to the record; it is freed at zero.
    pub(super) refs: Cell<usize>,
    wake_reason: ManuallyDrop<Cell<WakeReason>>,
    /// What most greenlets never need, allocated on first use: the record
    /// is written at spawn and read at every switch, so its size is memory
    /// traffic (100k live greenlets do not fit in the caches).
    extra: ManuallyDrop<RefCell<Option<Box<Extra>>>>,
    /// Set by the coroutine body on its first run; valid while `co` lives.
    yielder: Cell<*const Yielder<(), ()>>,
    /// Address of its stack's guard page (0 for the main greenlet).
    guard_page: Cell<usize>,
    /// Its key in the hub's live table (`u32::MAX`: not in it). 32 bits,
    /// to leave room for `park_off` in this line: 2^32 live greenlets would
    /// take over a TiB of records alone.
    live_key: Cell<u32>,
    /// Where its stack pointer was when it last switched out, as an offset
    /// above `guard_page` (0: it has not). Read by the loop to prefetch
    /// the top of its stack one resume ahead (`Hub::warm_next`), which is
    /// why it sits in this line, next to `guard_page`.
    park_off: Cell<u32>,
    // Off the switch path.
    /// What the typed body of the record this core heads does (the
    /// record's own vtable): what lets a thin [`Rec`](super::Rec) reach the
    /// body and free the record, with the body's layout known statically.
    pub(super) ops: &'static BodyOps,
    id: u64,
    /// The name given at spawn, behind one thin pointer: few greenlets
    /// are named, and a `Box<str>` here would take two words of every
    /// record.
    name: ManuallyDrop<Option<Box<Box<str>>>>,
    location: &'static Location<'static>,
    spawner_id: u64,
    /// Usable KiB of its stack (for overflow reports; 32 bits, as a
    /// stack is far smaller than 4 TiB, to pack with the next field).
    stack_kib: Cell<u32>,
    /// Holds a reservation of a default-size stack in the hub's pool
    /// (from its spawn until its first run, or its death before it): a
    /// count there, a flag here. A stack of another size is its own, in
    /// [`Extra::stack`].
    stack_reserved: Cell<bool>,
    /// What its body's one slot holds (see `record::Closure`).
    body_holds: Cell<Holds>,
    /// Its name was given to the blocking monitor.
    name_published: Cell<bool>,
}

/// What a record's body holds: a spawned greenlet's closure until its
/// first run (or its discard), then nothing, then its result once it
/// returned one, until the result is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holds {
    Nothing,
    Closure,
    Value,
}

impl Core {
    pub(crate) fn new(
        id: u64,
        name: Option<Box<str>>,
        location: &'static Location<'static>,
        is_main: bool,
    ) -> Core {
        Core::build(id, name, location, is_main, None, false)
    }

    /// A core; `spawner` is the one who spawned it, `stack_reserved`
    /// whether it holds a stack reservation.
    #[inline(always)]
    fn build(
        id: u64,
        name: Option<Box<str>>,
        location: &'static Location<'static>,
        is_main: bool,
        spawner: Option<&Core>,
        stack_reserved: bool,
    ) -> Core {
        Core {
            refs: Cell::new(0),
            ops: BodyOps::of::<MainBody>(),
            id,
            name: ManuallyDrop::new(name.map(Box::new)),
            location,
            spawner_id: spawner.map_or(u64::MAX, |s| s.id),
            // Live-table keys are below the number of live greenlets.
            spawner_key: spawner.map_or(u32::MAX, |s| s.live_key.get()),
            state: Cell::new(if is_main {
                State::Running
            } else {
                State::Scheduled
            }),
            started: Cell::new(is_main),
            co: ManuallyDrop::new(UnsafeCell::new(None)),
            stack_reserved: Cell::new(stack_reserved),
            yielder: Cell::new(std::ptr::null()),
            park_seq: Cell::new(0),
            wake_reason: ManuallyDrop::new(Cell::new(WakeReason::Woken)),
            extra: ManuallyDrop::new(RefCell::new(None)),
            kill_requested: Cell::new(false),
            unwinding: Cell::new(false),
            kill_deferred: Cell::new(false),
            pending: Cell::new(false),
            outcome: Cell::new(Outcome::Pending),
            live_key: Cell::new(u32::MAX),
            park_off: Cell::new(0),
            stack_kib: Cell::new(0),
            guard_page: Cell::new(0),
            name_published: Cell::new(false),
            is_main,
            // `Rec::spawned`, which writes the closure, says so
            // (`hold_closure`); other records' bodies hold nothing.
            body_holds: Cell::new(Holds::Nothing),
        }
    }

    // Plain data, fixed at spawn.

    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Where it was spawned.
    #[inline]
    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Whether it is its thread's main greenlet (runs on the thread's stack).
    #[inline]
    pub(crate) fn is_main(&self) -> bool {
        self.is_main
    }

    /// The core of a spawned greenlet, with `spawner` (the greenlet
    /// running at spawn) recorded weakly, holding a stack reservation in
    /// the pool if `stack_reserved` (see [`Core::take_stack_reservation`]).
    /// Built as one value, so that it can be written straight into its
    /// record.
    #[inline(always)]
    pub(crate) fn spawned(
        id: u64,
        name: Option<Box<str>>,
        location: &'static Location<'static>,
        spawner: &Core,
        stack_reserved: bool,
    ) -> Core {
        Core::build(id, name, location, false, Some(spawner), stack_reserved)
    }

    /// Its spawner's key in the live table and id, if it had one; the
    /// caller checks the id against what the key holds now.
    pub(crate) fn spawner(&self) -> Option<(usize, u64)> {
        (self.spawner_id != u64::MAX).then_some((self.spawner_key as usize, self.spawner_id))
    }

    // Its place in the hub's live table.

    /// Its key in the live table (`usize::MAX` when not in it).
    #[inline]
    pub(crate) fn live_key(&self) -> usize {
        match self.live_key.get() {
            u32::MAX => usize::MAX,
            k => k as usize,
        }
    }

    /// Entered the live table at `key` (`usize::MAX`: left it).
    #[inline]
    pub(crate) fn set_live_key(&self, key: usize) {
        debug_assert!(key == usize::MAX || key < u32::MAX as usize);
        self.live_key.set(u32::try_from(key).unwrap_or(u32::MAX));
    }

    // Its stack.

    /// Whether it held a stack reservation in the pool; it holds none
    /// after this (the first run takes a stack for it, a death before
    /// that gives the reservation back).
    #[inline]
    pub(crate) fn take_stack_reservation(&self) -> bool {
        self.stack_reserved.replace(false)
    }

    /// The stack of its own it was spawned with (a size other than the
    /// pool's default), until its first run takes it.
    pub(crate) fn take_own_stack(&self) -> Option<Stack> {
        self.extra_if_any()?.stack.take()
    }

    /// The stack it runs on: `usable` bytes above the guard page at `guard`.
    #[inline]
    pub(crate) fn set_stack_bounds(&self, usable: usize, guard: usize) {
        self.stack_kib
            .set(u32::try_from(usable / 1024).unwrap_or(u32::MAX));
        self.guard_page.set(guard);
    }

    /// Usable bytes of its stack (for overflow reports).
    #[inline]
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_kib.get() as usize * 1024
    }

    /// Address of its stack's guard page (0 for the main greenlet).
    #[inline]
    pub(crate) fn guard_page(&self) -> usize {
        self.guard_page.get()
    }

    /// Where its stack pointer was, near enough, when it last switched
    /// out (0: it has not run yet).
    #[inline]
    pub(crate) fn parked_sp(&self) -> usize {
        match self.park_off.get() {
            0 => 0,
            off => self.guard_page.get() + off as usize,
        }
    }

    /// Records `sp`, an address on its own stack, as where it switches
    /// out from. Only a hint: nothing but prefetches reads it.
    #[inline]
    pub(crate) fn set_parked_sp(&self, sp: usize) {
        // A stack is far smaller than 4 GiB, so the offset fits.
        self.park_off
            .set(sp.wrapping_sub(self.guard_page.get()) as u32);
    }

    /// Set by the coroutine body on its first run.
    pub(super) fn set_yielder(&self, yielder: *const Yielder<(), ()>) {
        self.yielder.set(yielder);
    }

    /// Its coroutine's yielder: null before its first run.
    #[inline]
    pub(crate) fn yielder(&self) -> *const Yielder<(), ()> {
        self.yielder.get()
    }

    // Kills inside `defer_kill`.

    /// Whether it is inside [`crate::defer_kill`].
    #[inline]
    pub(crate) fn kill_deferred(&self) -> bool {
        self.kill_deferred.get()
    }

    /// Enters (`true`) or leaves a `defer_kill` scope; returns whether it
    /// was inside one before, for the scope to restore.
    #[inline]
    pub(crate) fn set_kill_deferred(&self, deferred: bool) -> bool {
        self.kill_deferred.replace(deferred)
    }

    // What its body holds (the body is typed; this is what the untyped
    // side knows of it).

    /// Whether the body held the closure; it holds nothing after this.
    #[inline]
    pub(crate) fn take_closure(&self) -> bool {
        self.take_held(Holds::Closure)
    }

    /// The body's slot now holds the closure (a spawned record, once
    /// written).
    #[inline]
    pub(crate) fn hold_closure(&self) {
        debug_assert_eq!(self.body_holds.get(), Holds::Nothing);
        self.body_holds.set(Holds::Closure);
    }

    /// The body's slot now holds the result.
    #[inline]
    pub(crate) fn hold_value(&self) {
        debug_assert_eq!(self.body_holds.get(), Holds::Nothing);
        self.body_holds.set(Holds::Value);
    }

    /// Whether the body held the result; it holds nothing after this (the
    /// caller moves the result out, or drops it).
    #[inline]
    pub(crate) fn take_value(&self) -> bool {
        self.take_held(Holds::Value)
    }

    /// Whether the body held `what`; if so it holds nothing after this.
    #[inline]
    fn take_held(&self, what: Holds) -> bool {
        let held = self.body_holds.get() == what;
        if held {
            self.body_holds.set(Holds::Nothing);
        }
        held
    }

    // Its joiners, kept in `Extra`: a greenlet that dies before anyone waits
    // for it (most of a burst's, a server's connections) never needs them.

    /// `w` is woken when it dies.
    #[inline]
    pub(crate) fn push_joiner(&self, w: Waker) {
        self.extra().joiners.push(w);
    }

    /// Whether a greenlet waits for it to end.
    #[inline]
    pub(crate) fn has_joiners(&self) -> bool {
        self.extra
            .borrow()
            .as_ref()
            .is_some_and(|e| !e.joiners.is_empty())
    }

    /// Takes the wakers of the greenlets waiting for it to end.
    pub(crate) fn take_joiners(&self) -> Vec<Waker> {
        self.extra_if_any()
            .map(|mut e| std::mem::take(&mut e.joiners))
            .unwrap_or_default()
    }

    /// Drops the joiners whose wait already ended (timed out, interrupted).
    pub(crate) fn forget_stale_joiners(&self) {
        let stale: Vec<Waker> = {
            let Some(mut e) = self.extra_if_any() else {
                return;
            };
            let (stale, live) = std::mem::take(&mut e.joiners)
                .into_iter()
                .partition(Waker::is_stale);
            e.joiners = live;
            stale
        };
        // Dropped outside the borrow: dropping a waker may free a record.
        drop(stale);
    }

    /// Its name is to be given to the blocking monitor: true the first
    /// time only.
    #[inline]
    pub(crate) fn publish_name(&self) -> bool {
        !self.name_published.replace(true)
    }

    /// Its name was given to the blocking monitor.
    #[inline]
    pub(crate) fn name_published(&self) -> bool {
        self.name_published.get()
    }

    // The lifecycle: every change of state is one of these.

    #[inline]
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    #[inline]
    pub(super) fn set_state(&self, state: State) {
        self.state.set(state);
    }

    /// The state as `GreenletRef::state` reports it.
    pub(crate) fn public_state(&self) -> super::GreenletState {
        use super::GreenletState as Public;
        match self.state() {
            State::Delayed => Public::NotStarted,
            State::Scheduled if !self.has_started() => Public::NotStarted,
            State::Scheduled => Public::Ready,
            State::Running => Public::Running,
            State::Parked => Public::Parked,
            State::Dead => Public::Dead,
        }
    }

    /// Whether it ever ran (the main greenlet always has).
    pub(crate) fn has_started(&self) -> bool {
        self.started.get()
    }

    /// How it ended, or `Pending`.
    pub(crate) fn outcome(&self) -> Outcome {
        self.outcome.get()
    }

    /// Waits for its `spawn_later` timer before its first turn.
    pub(crate) fn delay(&self) {
        self.state.set(State::Delayed);
    }

    /// Resumed by the loop (perhaps for the first time).
    #[inline]
    pub(crate) fn resume(&self) {
        self.state.set(State::Running);
        self.started.set(true);
    }

    /// Its turn came while it runs the loop itself (the main greenlet, or a
    /// greenlet running the loop on its own stack): no switch was needed.
    #[inline]
    pub(crate) fn continue_running(&self) {
        self.state.set(State::Running);
    }

    /// The sequence number its next park's wakers carry.
    #[inline]
    pub(crate) fn park_seq(&self) -> u32 {
        self.park_seq.get()
    }

    /// Suspends in a park: only a waker of this park (or an interruption)
    /// schedules it again.
    #[inline]
    pub(crate) fn mark_parked(&self) {
        self.state.set(State::Parked);
    }

    /// Whether it is parked in the park numbered `seq`.
    #[inline]
    pub(crate) fn is_parked_at(&self, seq: u32) -> bool {
        self.park_seq.get() == seq && self.state.get() == State::Parked
    }

    /// Why the park it is parked in ends, set just before it is scheduled.
    #[inline]
    pub(crate) fn set_wake_reason(&self, reason: WakeReason) {
        self.wake_reason.set(reason);
    }

    /// Ends a park: later wakers of it are stale. Returns why it ended.
    #[inline]
    pub(crate) fn end_park(&self) -> WakeReason {
        self.park_seq.set(self.park_seq.get().wrapping_add(1));
        self.wake_reason.take()
    }

    /// Marks it dead with `outcome`; a kill in progress is over.
    pub(crate) fn mark_dead(&self, outcome: Outcome) {
        self.outcome.set(outcome);
        self.state.set(State::Dead);
        self.unwinding.set(false);
        self.kill_requested.set(false);
    }

    /// Dead without an outcome of its own yet: torn down with its hub, or
    /// killed before it started (marked first, so that its closure's drop,
    /// which runs user code, sees it dead).
    pub(crate) fn mark_ended(&self) {
        self.state.set(State::Dead);
    }

    /// Asks it to unwind with `GreenletExit` at its next blocking point.
    pub(crate) fn request_kill(&self) {
        self.kill_requested.set(true);
    }

    #[inline]
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill_requested.get()
    }

    /// Whether a kill's unwind is in progress.
    pub(crate) fn is_unwinding(&self) -> bool {
        self.unwinding.get()
    }

    /// A kill's unwind starts now.
    pub(crate) fn begin_unwind(&self) {
        self.kill_requested.set(false);
        self.unwinding.set(true);
    }

    /// Not unwinding (any earlier kill's unwind was caught): it may be
    /// killed again.
    #[inline]
    pub(crate) fn clear_unwinding(&self) {
        self.unwinding.set(false);
    }

    /// The name given at spawn, if any.
    pub(crate) fn given_name(&self) -> Option<&str> {
        self.name.as_deref().map(|n| &**n)
    }

    pub(crate) fn name(&self) -> Cow<'_, str> {
        match self.given_name() {
            Some(n) => Cow::Borrowed(n),
            None if self.is_main => Cow::Borrowed("main"),
            None => Cow::Owned(format!("Greenlet-{}", self.id)),
        }
    }

    /// The rarely used parts, allocated if this is their first use.
    pub(crate) fn extra(&self) -> RefMut<'_, Extra> {
        RefMut::map(self.extra.borrow_mut(), |e| {
            &mut **e.get_or_insert_with(Box::default)
        })
    }

    /// Whether the rarely used parts were ever used.
    #[inline]
    pub(crate) fn has_extra(&self) -> bool {
        self.extra.borrow().is_some()
    }

    /// The rarely used parts if they were ever used (never allocates).
    pub(crate) fn extra_if_any(&self) -> Option<RefMut<'_, Extra>> {
        RefMut::filter_map(self.extra.borrow_mut(), |e| e.as_deref_mut()).ok()
    }

    /// Keeps an interruption (a fired timeout, a linked greenlet's death)
    /// for the greenlet's next wait, after those already kept.
    pub(crate) fn push_pending(&self, e: Interrupted) {
        self.extra().pending.push(e);
        self.pending.set(true);
    }

    /// Live references to the record (for tests).
    #[cfg(test)]
    pub(crate) fn refs(&self) -> usize {
        self.refs.get()
    }

    #[inline]
    pub(super) fn add_ref(&self) {
        // Checked after the increment, as `Rc` does (an increment and a
        // branch on its flags); only reachable by leaking references on
        // purpose.
        let n = self.refs.get().wrapping_add(1);
        self.refs.set(n);
        if n == 0 {
            std::process::abort();
        }
    }

    /// The oldest undelivered interruption, if any. Checked by every park,
    /// so the empty case is inline and the rest out of line.
    #[inline]
    pub(crate) fn take_pending(&self) -> Option<Interrupted> {
        if self.may_have_pending() {
            self.take_pending_slow()
        } else {
            None
        }
    }

    /// False when no interruption is kept for its next wait.
    #[inline]
    pub(crate) fn may_have_pending(&self) -> bool {
        self.pending.get()
    }

    /// The oldest undelivered timeout, other interruptions staying kept:
    /// inside `defer_kill`, whose caller (a C function) cannot pass a linked
    /// greenlet's death on, those wait for the next park outside.
    #[cold]
    pub(crate) fn take_pending_timeout(&self) -> Option<Interrupted> {
        let mut e = self.extra_if_any()?;
        let i = e
            .pending
            .iter()
            .position(|p| matches!(p, Interrupted::Timeout(_)))?;
        let taken = e.pending.remove(i);
        self.pending.set(!e.pending.is_empty());
        Some(taken)
    }

    #[cold]
    fn take_pending_slow(&self) -> Option<Interrupted> {
        let mut e = self.extra_if_any()?;
        let taken = (!e.pending.is_empty()).then(|| e.pending.remove(0));
        self.pending.set(!e.pending.is_empty());
        taken
    }

    /// The coroutine slot, for the hub to build, resume and retire the
    /// coroutine in place (moving it out and back for every resume would
    /// copy it twice per switch).
    ///
    /// # Safety
    /// No other reference to the slot may be alive: only the loop
    /// (`run_one`, which holds it across a resume) and code that runs while
    /// this greenlet is not being resumed (`kill` of a greenlet that never
    /// ran, teardown, fork) use it, and none of them can run inside
    /// `run_one`'s use for the same greenlet: a running greenlet has started,
    /// so `kill` does not touch its slot; teardown runs on the main
    /// greenlet, which only runs when no greenlet is resumed; and fork skips
    /// the greenlets being resumed (its caller, and the one running the
    /// loop below it).
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn co_slot(&self) -> &mut Option<Co> {
        // SAFETY: exclusive by the caller's contract above.
        unsafe { &mut *self.co.get() }
    }

    /// Takes the coroutine out (teardown, fork).
    pub(crate) fn take_co(&self) -> Option<Co> {
        // SAFETY: teardown and fork call this only for greenlets that are
        // not being resumed (see `co_slot`).
        unsafe { self.co_slot() }.take()
    }

    /// Drops a fired, undelivered timeout; `true` if it was pending.
    pub(crate) fn discard_pending(&self, id: TimeoutId) -> bool {
        let Some(mut e) = self.extra_if_any() else {
            return false;
        };
        let before = e.pending.len();
        e.pending.retain(|p| p.timeout_id() != Some(id));
        self.pending.set(!e.pending.is_empty());
        e.pending.len() != before
    }

    /// Where a greenlet is, for messages: "Greenlet-7 spawned at src/x.rs:1:2".
    pub(crate) fn describe(&self) -> String {
        if self.is_main {
            "the main greenlet".to_string()
        } else {
            format!("{} spawned at {}", self.name(), self.location)
        }
    }
}

impl Drop for Core {
    /// Most records are freed with nothing in these fields (the coroutine
    /// retired at the death, no joiner left, no extras, no name): one test
    /// each, and their drops out of line. (The fields' own drop glue cost
    /// ~50 instructions per record, a fifth of a spawn's own.)
    #[inline]
    fn drop(&mut self) {
        let empty = self.co.get_mut().is_none()
            && matches!(self.wake_reason.get_mut(), WakeReason::Woken)
            && self.extra.get_mut().is_none()
            && self.name.is_none();
        if !empty {
            self.drop_fields();
        }
    }
}

impl Core {
    #[cold]
    #[inline(never)]
    fn drop_fields(&mut self) {
        // SAFETY: called once, from `drop`; the fields are not used again.
        unsafe {
            ManuallyDrop::drop(&mut self.co);
            ManuallyDrop::drop(&mut self.wake_reason);
            ManuallyDrop::drop(&mut self.extra);
            ManuallyDrop::drop(&mut self.name);
        }
    }
}

/// The parts of a record most greenlets never use (see `Core::extra`).
#[derive(Default)]
pub(crate) struct Extra {
    /// Interruptions that came while this greenlet was not parked (fired
    /// timeouts, deaths of linked greenlets); delivered, oldest first, by
    /// its next waits.
    pub(crate) pending: Vec<Interrupted>,
    /// The payload of its panic, until taken.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    pub(crate) links: Vec<Link>,
    /// The timer that starts a `spawn_later` greenlet.
    pub(crate) start_timer: Option<TimerHandle>,
    /// A stack of a size other than the pool's default, given at spawn,
    /// until its first run (default-size stacks are only reserved: see
    /// `Core::stack_reserved`).
    pub(crate) stack: Option<Stack>,
    /// The greenlets waiting for it to end (see `Core::push_joiner`).
    pub(crate) joiners: Vec<Waker>,
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use std::rc::Rc;

    use super::super::{Link, LinkAction, LinkWhen, Rec, Waker};
    use super::{Co, Core, Extra, State, WakeReason};

    /// The fields whose drop `Drop for Core` skips when they are empty
    /// are dropped when they are not.
    #[test]
    fn what_a_record_holds_is_dropped_with_it() {
        let held = Rc::new(());
        let rec = Rec::idle(1);
        let h = held.clone();
        rec.core().extra().links.push(Link {
            id: 0,
            when: LinkWhen::Always,
            action: LinkAction::Call(Box::new(move |_| drop(h))),
        });
        let waiter = Rec::idle(2);
        rec.core().push_joiner(Waker::for_park(waiter.clone()));
        assert_eq!(waiter.core().refs(), 2);
        drop(rec);
        assert_eq!(Rc::strong_count(&held), 1, "the extras were dropped");
        assert_eq!(waiter.core().refs(), 1, "the joiner was dropped");
    }

    /// A greenlet of a one-word closure returning one word fits a 192-byte
    /// block: three cache lines (see `Core`, `record::Closure`).
    #[test]
    fn a_small_greenlets_record_takes_three_cache_lines() {
        use super::super::record::{Closure, Record};
        fn record_size<F: FnOnce() -> T, T>(_: &F) -> usize {
            size_of::<Record<Closure<F, T>>>()
        }
        assert_eq!(size_of::<Core>(), 176);
        let i = 7u64;
        assert!(record_size(&move || i) <= 192);
        assert!(record_size(&move || [i, i]) <= 192);
        assert!(record_size(&|| ()) <= 192);
    }

    /// The fields a wake touches and the coroutine share the first line;
    /// the rest of a resume and park fits the second (see `Core`).
    #[test]
    fn the_switch_path_fields_fill_the_first_two_lines() {
        let end = |off: usize, size: usize| off + size;
        assert!(end(offset_of!(Core, state), size_of::<State>()) <= 64);
        assert!(end(offset_of!(Core, park_seq), 4) <= 64);
        assert!(end(offset_of!(Core, co), size_of::<Option<Co>>()) <= 64);
        assert!(offset_of!(Core, refs) >= 64);
        for last in [
            end(offset_of!(Core, refs), 8),
            end(offset_of!(Core, wake_reason), size_of::<WakeReason>()),
            end(
                offset_of!(Core, extra),
                size_of::<std::cell::RefCell<Option<Box<Extra>>>>(),
            ),
            end(offset_of!(Core, yielder), 8),
            end(offset_of!(Core, guard_page), 8),
            end(offset_of!(Core, live_key), 4),
            end(offset_of!(Core, park_off), 4),
        ] {
            assert!(last <= 128, "a switch-path field ends at {last}");
        }
    }
}
