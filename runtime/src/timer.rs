//! The hub's timer queue: a binary heap ordered by (deadline, arming order)
//! with O(1) cancellation by lazy deletion.
//!
//! Most timers are cancelled before they fire (a timeout guard around an
//! operation that succeeded), so cancelling only frees the slot; the heap
//! entry is skipped when it surfaces. Dead entries are compacted away when
//! they outnumber live ones, and dropped at once when no timer is live, so
//! arming and cancelling any number of timers leaves nothing behind.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

use crate::record::Rec;
use crate::interrupt::TimeoutId;
use crate::park::Waker;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Wake a parked greenlet (sleep, join_timeout, ...).
    Wake(Waker),
    /// Deliver a timeout to a greenlet.
    Interrupt(Rec, TimeoutId),
    /// Schedule a greenlet made by `spawn_later`.
    Start(Rec),
}

/// Names one armed timer, for [`Timers::cancel`]. The sequence number makes
/// a handle to a fired or cancelled timer harmless even after its slot was
/// reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerHandle {
    key: u32,
    seq: u64,
}

struct Slot {
    seq: u64,
    action: TimerAction,
}

#[derive(PartialEq, Eq)]
struct Entry {
    deadline: Instant,
    seq: u64,
    key: u32,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Equal deadlines fire in arming order.
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Slab<Slot>,
}

thread_local! {
    /// Arming order, unique per thread across hubs: a handle to a timer of
    /// a hub that was shut down never matches a timer of the next hub.
    static NEXT_SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            slots: Slab::new(),
        }
    }

    pub(crate) fn arm(&mut self, deadline: Instant, action: TimerAction) -> TimerHandle {
        let seq = NEXT_SEQ.with(|n| {
            let v = n.get();
            n.set(v + 1);
            v
        });
        let key = self.slots.insert(Slot { seq, action }) as u32;
        self.heap.push(Reverse(Entry { deadline, seq, key }));
        TimerHandle { key, seq }
    }

    /// Removes an armed timer and returns its action, so the caller drops it
    /// after releasing the borrow of the queue (dropping a waker can run
    /// user code). `None` if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, h: TimerHandle) -> Option<TimerAction> {
        let key = h.key as usize;
        match self.slots.get(key) {
            Some(slot) if slot.seq == h.seq => {}
            _ => return None,
        }
        let slot = self.slots.remove(key);
        self.compact();
        Some(slot.action)
    }

    /// Whether the timer is still armed.
    pub(crate) fn is_armed(&self, h: TimerHandle) -> bool {
        matches!(self.slots.get(h.key as usize), Some(s) if s.seq == h.seq)
    }

    fn compact(&mut self) {
        let live = self.slots.len();
        if live == 0 {
            self.heap.clear();
        } else if self.heap.len() > 2 * live + 64 {
            let slots = &self.slots;
            self.heap.retain(
                |Reverse(e)| matches!(slots.get(e.key as usize), Some(s) if s.seq == e.seq),
            );
        }
    }

    /// The earliest deadline of a live timer, dropping dead entries on top.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(e)) = self.heap.peek() {
            if matches!(self.slots.get(e.key as usize), Some(s) if s.seq == e.seq) {
                return Some(e.deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns the action of the earliest live timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerAction> {
        loop {
            let Reverse(e) = self.heap.peek()?;
            let live = matches!(self.slots.get(e.key as usize), Some(s) if s.seq == e.seq);
            if live && e.deadline > now {
                return None;
            }
            let Reverse(e) = self.heap.pop().expect("peeked");
            if live {
                let slot = self.slots.remove(e.key as usize);
                if self.slots.is_empty() {
                    self.heap.clear();
                }
                return Some(slot.action);
            }
        }
    }

    /// Removes timers whose action can only reach a dead greenlet; returns
    /// them so the caller drops them outside the borrow.
    pub(crate) fn retain_live(&mut self) -> Vec<TimerAction> {
        let dead: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| match &s.action {
                TimerAction::Wake(w) => w.is_stale(),
                TimerAction::Interrupt(r, _) | TimerAction::Start(r) => {
                    r.core().state.get() == crate::record::State::Dead
                }
            })
            .map(|(k, _)| k)
            .collect();
        let out = dead
            .into_iter()
            .map(|k| self.slots.remove(k).action)
            .collect();
        self.compact();
        out
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Number of heap entries, live or awaiting lazy deletion.
    pub(crate) fn queue_len(&self) -> usize {
        self.heap.len()
    }
}

/// The interruption hook the timeout crate is built on: arms a timer that
/// delivers [`Interrupted::Timeout(id)`](crate::Interrupted::Timeout) to
/// `target` at `deadline`.
///
/// If `target` is parked then, its wait ends with that error; otherwise the
/// error is kept and returned by its next wait (without suspending).
pub fn arm_timeout(deadline: Instant, target: &crate::GreenletRef, id: TimeoutId) -> TimerHandle {
    crate::hub::Hub::get().arm_timer(deadline, TimerAction::Interrupt(target.rec.clone(), id))
}

/// What [`cancel_timeout`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutStatus {
    /// The timer was still armed; it is now cancelled and will never fire.
    Cancelled,
    /// It had fired but its error was not delivered yet; the error is now
    /// discarded and no wait will see it.
    Discarded,
    /// It had fired and a wait of the target already returned its error
    /// (or the handle was unknown).
    Delivered,
}

/// Cancels a timer armed by [`arm_timeout`]; if it already fired, discards
/// its error when not delivered yet. Safe to call at any time, also during
/// thread exit (then a no-op reporting `Delivered`).
pub fn cancel_timeout(
    handle: TimerHandle,
    target: &crate::GreenletRef,
    id: TimeoutId,
) -> TimeoutStatus {
    let Some(hub) = crate::hub::Hub::try_get() else {
        return TimeoutStatus::Delivered;
    };
    if hub.cancel_timer(handle) {
        TimeoutStatus::Cancelled
    } else if target.rec.core().discard_pending(id) {
        TimeoutStatus::Discarded
    } else {
        TimeoutStatus::Delivered
    }
}

/// Whether a timer is still armed (neither fired nor cancelled).
pub fn timer_armed(handle: TimerHandle) -> bool {
    crate::hub::Hub::try_get().is_some_and(|h| h.timers.borrow().is_armed(handle))
}

/// Cancels a timer when dropped, so a wait that unwinds (a kill) never
/// leaves its timer armed behind it.
pub(crate) struct TimerGuard(Option<TimerHandle>);

impl TimerGuard {
    pub(crate) fn new() -> TimerGuard {
        TimerGuard(None)
    }

    pub(crate) fn arm(&mut self, at: Instant, action: TimerAction) {
        self.0 = Some(crate::hub::Hub::get().arm_timer(at, action));
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        if let (Some(h), Some(hub)) = (self.0.take(), crate::hub::Hub::try_get()) {
            hub.cancel_timer(h);
        }
    }
}
