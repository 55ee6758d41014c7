//! The hub's timer queue: a binary heap ordered by (deadline, arming order)
//! with O(1) cancellation by lazy deletion.
//!
//! Most timers are cancelled before they fire (a timeout guard around an
//! operation that succeeded), so cancelling only frees the slot; the heap
//! entry is skipped when it surfaces. The entry of the timer armed last
//! stays out of the heap until the hub next reads the queue, so a timer
//! armed and cancelled with no wait in between never touches the heap.
//! A cancel that leaves more than twice as many entries as live timers
//! (plus 64) compacts the dead ones away, and when no timer is live they
//! are dropped at once, so arming and cancelling any number of timers
//! leaves nothing behind. (Timers that fire take their entries with them;
//! dead entries left from before can then outnumber the fewer live ones
//! until the next cancel, never beyond the size the last cancel allowed.)

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::interrupt::TimeoutId;
use crate::task::Rec;
use crate::task::Waker;

pub(crate) mod handle;
#[cfg(test)]
mod model;

pub use handle::TimerHandle;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Wake a parked greenlet (sleep, join_timeout, ...).
    Wake(Waker),
    /// Deliver a timeout to a greenlet.
    Interrupt(Rec, TimeoutId),
    /// Schedule a greenlet made by `spawn_later`.
    Start(Rec),
}

impl TimerAction {
    /// The record the action holds. Dropping an action releases that and
    /// nothing else, which `Timers::cancel_to_record` relies on.
    fn record(&self) -> &Rec {
        match self {
            TimerAction::Wake(w) => w.record(),
            TimerAction::Interrupt(r, _) | TimerAction::Start(r) => r,
        }
    }
}

/// Marks the `seq` of a free slot. Arming numbers stay below it (2^63 timers
/// would take centuries), so no handle matches a free slot.
const FREE: u64 = 1 << 63;

/// A slot of the table: armed (`seq` is the timer's arming number, `action`
/// is `Some`) or free (`seq` is `FREE` plus the key of the next free slot,
/// `action` is `None`). So one comparison of a handle's `seq` with its
/// slot's tells whether the timer is still armed.
struct Slot {
    seq: u64,
    action: Option<TimerAction>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
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
    /// The entry of the timer armed last, kept out of the heap until the
    /// next arm or until the heap is read (`flush`). A timer armed and
    /// cancelled with no wait in between (a timeout around an operation
    /// that did not block) then never touches the heap.
    newest: Option<Entry>,
    slots: Vec<Slot>,
    /// The first free slot; `slots.len()` when none is free.
    free: usize,
    /// Armed timers (occupied slots).
    live: usize,
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
            newest: None,
            slots: Vec::new(),
            free: 0,
            live: 0,
        }
    }

    /// Arms a timer with the action made by `make` once its slot is
    /// chosen, so that it is written straight into the slot instead of
    /// being built elsewhere and copied: a copy would read it back with
    /// wider loads than it was stored with, which the CPU cannot forward
    /// from its store buffer, and arming a timeout would stall on that.
    #[inline]
    pub(crate) fn arm_with(
        &mut self,
        deadline: Instant,
        make: impl FnOnce() -> TimerAction,
    ) -> TimerHandle {
        let seq = NEXT_SEQ.with(|n| {
            let v = n.get();
            n.set(v + 1);
            v
        });
        debug_assert!(seq < FREE);
        let key = self.free;
        if key == self.slots.len() {
            self.slots.push(Slot {
                seq: FREE | (key as u64 + 1),
                action: None,
            });
        }
        let slot = &mut self.slots[key];
        self.free = (slot.seq & !FREE) as usize;
        slot.seq = seq;
        debug_assert!(slot.action.is_none());
        slot.action = Some(make());
        self.live += 1;
        let key = key as u32;
        if let Some(older) = self.newest {
            self.heap.push(Reverse(older));
        }
        self.newest = Some(Entry { deadline, seq, key });
        TimerHandle { key, seq }
    }

    /// Removes an armed timer and returns its action (for tests: the hub
    /// cancels with [`Timers::cancel_to_record`]). `None` if it already
    /// fired or was cancelled.
    #[cfg(test)]
    fn cancel(&mut self, h: TimerHandle) -> Option<TimerAction> {
        let action = self.armed_slot(h)?.action.take();
        self.cancelled(h);
        action
    }

    /// Cancels an armed timer; `None` if it already fired or was cancelled.
    /// The action is dropped in its slot, and a new reference to its record is
    /// returned for the caller to drop after the borrow. That reference
    /// keeps the drop here from freeing the record (which runs user code).
    /// Moving the action out instead would copy it (see
    /// [`Timers::arm_with`]) right after `arm_with` stored it.
    #[inline]
    pub(crate) fn cancel_to_record(&mut self, h: TimerHandle) -> Option<Rec> {
        let slot = self.armed_slot(h)?;
        let rec = slot.action.as_ref().map(|a| a.record().clone());
        slot.action = None;
        self.cancelled(h);
        rec
    }

    /// [`Timers::cancel_to_record`] for a caller that holds a reference to
    /// the action's record (`held`; a timeout guard holds its greenlet's):
    /// dropping the action in its slot then cannot free the record, so no
    /// reference is made for the caller to drop. `Ok(false)` if the timer
    /// already fired or was cancelled. If the action's record is another
    /// one, the timer is cancelled as by `cancel_to_record`, and
    /// `Err` holds that record for the caller to drop after the borrow.
    #[inline]
    pub(crate) fn cancel_held(&mut self, h: TimerHandle, held: &Rec) -> Result<bool, Rec> {
        let Some(slot) = self.armed_slot(h) else {
            return Ok(false);
        };
        if !slot
            .action
            .as_ref()
            .is_some_and(|a| a.record().ptr_eq(held))
        {
            // Not the record held: dropping ours here could free it.
            return self.cancel_to_record(h).map_or(Ok(false), Err);
        }
        slot.action = None;
        self.cancelled(h);
        Ok(true)
    }

    #[inline]
    fn armed_slot(&mut self, h: TimerHandle) -> Option<&mut Slot> {
        self.slots
            .get_mut(h.key as usize)
            .filter(|s| s.seq == h.seq)
    }

    /// Frees the slot of `h`, whose action was just taken, and drops its
    /// entry if that is still the newest.
    #[inline]
    fn cancelled(&mut self, h: TimerHandle) {
        self.free_slot(h.key as usize);
        if self.newest.is_some_and(|e| e.seq == h.seq) {
            self.newest = None;
        }
        self.compact();
    }

    /// Puts slot `key`, whose action was taken, on the free list.
    fn free_slot(&mut self, key: usize) {
        self.slots[key].seq = FREE | self.free as u64;
        self.free = key;
        self.live -= 1;
    }

    /// Whether the timer is still armed.
    #[inline]
    pub(crate) fn is_armed(&self, h: TimerHandle) -> bool {
        self.slots
            .get(h.key as usize)
            .is_some_and(|s| s.seq == h.seq)
    }

    #[inline]
    fn compact(&mut self) {
        if self.live == 0 {
            if !self.heap.is_empty() {
                self.heap.clear(); // not free on an empty heap
            }
            self.newest = None;
        } else if self.heap.len() > 2 * self.live + 64 {
            self.compact_slow();
        }
    }

    #[cold]
    fn compact_slow(&mut self) {
        let slots = &self.slots;
        self.heap
            .retain(|Reverse(e)| slots.get(e.key as usize).is_some_and(|s| s.seq == e.seq));
    }

    /// Removes the armed timer in slot `key` and returns its action.
    fn remove(&mut self, key: usize) -> TimerAction {
        let action = self.slots[key].action.take();
        self.free_slot(key);
        action.expect("an armed slot has an action")
    }

    /// Moves the newest entry into the heap, before the heap is read.
    fn flush(&mut self) {
        if let Some(e) = self.newest.take() {
            self.heap.push(Reverse(e));
        }
    }

    /// Whether the heap entry `e` names an armed timer.
    fn is_live(&self, e: &Entry) -> bool {
        self.slots
            .get(e.key as usize)
            .is_some_and(|s| s.seq == e.seq)
    }

    /// The earliest deadline of a live timer, dropping dead entries on top.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.flush();
        while let Some(Reverse(e)) = self.heap.peek() {
            if self.is_live(e) {
                return Some(e.deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns the action of the earliest live timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerAction> {
        self.flush();
        loop {
            let Reverse(e) = self.heap.peek()?;
            let live = self.is_live(e);
            if live && e.deadline > now {
                return None;
            }
            let Reverse(e) = self.heap.pop().expect("peeked");
            if live {
                let action = self.remove(e.key as usize);
                if self.live == 0 {
                    self.heap.clear();
                }
                return Some(action);
            }
        }
    }

    /// Removes timers whose action can only reach a dead greenlet; returns
    /// them so the caller drops them outside the borrow.
    pub(crate) fn retain_live(&mut self) -> Vec<TimerAction> {
        let dead: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| match &s.action {
                None => false,
                Some(TimerAction::Wake(w)) => w.is_stale(),
                Some(TimerAction::Interrupt(r, _) | TimerAction::Start(r)) => {
                    r.core().state() == crate::task::State::Dead
                }
            })
            .map(|(k, _)| k)
            .collect();
        let out = dead.into_iter().map(|k| self.remove(k)).collect();
        self.compact();
        out
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Number of queued entries, live or awaiting lazy deletion.
    pub(crate) fn queue_len(&self) -> usize {
        self.heap.len() + usize::from(self.newest.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rec() -> Rec {
        Rec::idle(1)
    }

    impl Timers {
        fn arm(&mut self, at: Instant, action: TimerAction) -> TimerHandle {
            self.arm_with(at, || action)
        }
    }

    fn start() -> TimerAction {
        TimerAction::Start(rec())
    }

    fn id_of(a: TimerAction) -> Option<TimeoutId> {
        match a {
            TimerAction::Interrupt(_, id) => Some(id),
            _ => None,
        }
    }

    #[test]
    fn equal_deadlines_fire_in_arming_order_whether_or_not_newest() {
        let mut t = Timers::new();
        let at = Instant::now();
        let me = rec();
        let ids: Vec<TimeoutId> = (0..4).map(|_| TimeoutId::next()).collect();
        let arm = |t: &mut Timers, i: usize| t.arm(at, TimerAction::Interrupt(me.clone(), ids[i]));
        arm(&mut t, 0);
        arm(&mut t, 1);
        let c = arm(&mut t, 2);
        assert!(t.cancel(c).is_some(), "the newest, never in the heap");
        arm(&mut t, 3);
        assert_eq!(t.next_deadline(), Some(at));
        let fired: Vec<_> = std::iter::from_fn(|| t.pop_due(at).map(id_of)).collect();
        assert_eq!(fired, [Some(ids[0]), Some(ids[1]), Some(ids[3])]);
        assert_eq!((t.len(), t.queue_len()), (0, 0));
    }

    #[test]
    fn earliest_deadline_wins_over_arming_order() {
        let mut t = Timers::new();
        let now = Instant::now();
        t.arm(now + Duration::from_secs(2), start());
        t.arm(now + Duration::from_secs(1), start());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(t.pop_due(now).is_none());
        assert!(t.pop_due(now + Duration::from_secs(1)).is_some());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn a_stale_handle_does_not_match_the_reused_slot() {
        let mut t = Timers::new();
        let now = Instant::now();
        let a = t.arm(now, start());
        assert!(t.cancel_to_record(a).is_some());
        let b = t.arm(now, start());
        assert_eq!(a.key, b.key, "the slot is reused");
        assert!(!t.is_armed(a) && t.is_armed(b));
        assert!(t.cancel(a).is_none() && t.cancel_to_record(a).is_none());
        assert!(t.cancel(b).is_some());
        assert!(t.cancel(b).is_none(), "cancelled once");
        assert_eq!((t.len(), t.queue_len()), (0, 0));
    }

    #[test]
    fn cancelling_out_of_order_stays_compact() {
        let mut t = Timers::new();
        let now = Instant::now();
        let keep = t.arm(now, start());
        for _ in 0..10_000 {
            let a = t.arm(now, start());
            let b = t.arm(now, start());
            t.cancel(a);
            t.cancel(b);
            assert!(t.queue_len() <= 2 * t.len() + 66, "{}", t.queue_len());
        }
        assert_eq!(t.len(), 1);
        t.cancel(keep);
        assert_eq!((t.len(), t.queue_len()), (0, 0));
    }
}
