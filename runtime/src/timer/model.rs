//! A model-based property test of [`Timers`]: random sequences of what the
//! hub does with its timer queue (arming, cancelling in the three ways the
//! hub and the tests do, reading the next deadline, firing what is due as
//! the clock moves forward, dropping the timers of dead greenlets, and
//! tearing the queue down), each followed by a check of the queue against
//! a model of it.
//!
//! The model is a map from (deadline, arming number) to the live timers,
//! with what each timer's action is (its kind, its record, its timeout id,
//! and for a waker the park it was made for), and the state of the few
//! records the actions hold. Deadlines are a fixed base `Instant` plus
//! whole milliseconds, within a small range around the model's clock, so
//! that equal deadlines (fired in arming order) and deadlines already past
//! are common.
//!
//! After every step: `len()`, `is_armed` of every handle ever issued
//! (cancelled, fired, or from a queue since torn down), each record's
//! reference count (one for the test, one per live timer whose action holds
//! it: nothing leaked, nothing released twice), the slot table (no larger
//! than the most timers armed at once, its free list sound), every live
//! timer queued exactly once at its deadline, and the queue's size: empty
//! when no timer is live; at most `2 * live + 64` heap entries after a
//! cancellation or `retain_live` (the compaction rule), plus the newest
//! entry; no step other than those adds a dead entry; and cancelling the
//! timer armed last, with no read of the queue since, drops its entry at
//! once (it never reached the heap). What `pop_due`, `next_deadline`, the
//! cancels and `retain_live` return is checked against the model at each
//! call.
//!
//! Not checked: what the actions do when run (the hub's `fire_timers` wakes,
//! interrupts and schedules; here they are only inspected and dropped), a
//! record freed by the queue (the test holds a reference to each, so the
//! queue never drops the last one), a panic in the closure given to
//! `arm_with`, and the queue's size right after `pop_due`: timers firing
//! can leave more dead entries than live ones (up to the live count at the
//! last cancellation plus 64) until the next cancellation compacts them or
//! the last live timer fires; the check there is only that none is added.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Entry, TimerAction, TimerHandle, Timers, FREE};
use crate::interrupt::TimeoutId;
use crate::task::{Rec, Waker};

/// How many records the actions share.
const RECS: usize = 3;

/// Deadlines are armed from this many milliseconds before the clock...
const PAST: u64 = 8;

/// ... to `SPAN - PAST` milliseconds after it.
const SPAN: u8 = 24;

/// The heap may hold this many entries beyond twice the live timers before
/// a cancellation compacts it (as in `Timers::compact`).
const COMPACT_SLACK: usize = 64;

/// What a timer does when it fires ([`TimerAction`]'s variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Wake,
    Interrupt,
    Start,
}

/// How a timer is cancelled.
#[derive(Clone, Copy, Debug)]
enum How {
    /// `cancel_to_record`, as `Hub::cancel_timer` does.
    ToRecord,
    /// `cancel_held` with the action's own record, as a timeout guard does.
    Held,
    /// `cancel_held` with another record (its fallback to
    /// `cancel_to_record`).
    HeldOther,
    /// The tests' `cancel`, which returns the action.
    Take,
}

/// A change of a record's state, which decides whether `retain_live`
/// keeps the timers acting on it.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Parks it (if alive): wakers made from now on are current.
    Park,
    /// Ends its park (if parked) and runs it: its wakers are stale.
    Unpark,
    /// Marks it dead (for good).
    Kill,
}

/// One step of a generated sequence.
#[derive(Clone, Debug)]
enum Op {
    /// `arm_with` at `now - PAST + at` milliseconds, an action of `kind`
    /// on record `rec`.
    Arm { at: u8, kind: Kind, rec: usize },
    /// Arms one timer per offset (as `Arm`), of each kind on each record in
    /// turn:
    /// with `CancelMany`, enough dead entries to reach compaction.
    Burst(Vec<u8>),
    /// Cancels one handle (the `pick`-th, modulo the choice): a live
    /// timer's (`live`), or any ever issued, perhaps fired, cancelled or of
    /// a queue torn down since.
    Cancel { live: bool, pick: u16, how: How },
    /// Cancels the live timers in arming order (reversed if `rev`),
    /// starting at the `from`-th (modulo their number), keeping every
    /// `keep`-th (none if 0).
    CancelMany {
        keep: usize,
        from: u16,
        rev: bool,
        how: How,
    },
    /// `next_deadline`.
    NextDeadline,
    /// Advances the clock by this many milliseconds and calls `pop_due`
    /// until it answers `None`, as the hub's `fire_timers` does.
    Fire(u8),
    /// Changes the state of a record.
    Record { rec: usize, change: Change },
    /// `retain_live`, as the hub does after a fork.
    RetainLive,
    /// Drops the queue for a new one, as the hub's teardown does.
    Teardown,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Wake), Just(Kind::Interrupt), Just(Kind::Start)]
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::ToRecord),
        Just(How::Held),
        Just(How::HeldOther),
        Just(How::Take)
    ]
}

/// One step, weighted towards arming, cancelling and firing.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..=SPAN, kind(), 0..RECS).prop_map(|(at, kind, rec)| Op::Arm { at, kind, rec }),
        1 => prop::collection::vec(0..=SPAN, 40..=160).prop_map(Op::Burst),
        6 => (prop::bool::weighted(0.7), any::<u16>(), how())
            .prop_map(|(live, pick, how)| Op::Cancel { live, pick, how }),
        1 => (prop::sample::select(vec![0usize, 2, 3, 5, 8]), any::<u16>(), any::<bool>(), how())
            .prop_map(|(keep, from, rev, how)| Op::CancelMany { keep, from, rev, how }),
        2 => Just(Op::NextDeadline),
        4 => (0u8..=12).prop_map(Op::Fire),
        2 => (
            0..RECS,
            prop_oneof![Just(Change::Park), Just(Change::Unpark), Just(Change::Kill)],
        )
            .prop_map(|(rec, change)| Op::Record { rec, change }),
        1 => Just(Op::RetainLive),
        1 => Just(Op::Teardown),
    ]
}

/// A live timer as the model knows it.
#[derive(Clone, Copy, Debug)]
struct Timer {
    h: TimerHandle,
    kind: Kind,
    rec: usize,
    /// The timeout id of an `Interrupt`.
    id: Option<TimeoutId>,
    /// The park sequence number a `Wake`'s waker was made with.
    park: u32,
}

/// (deadline in milliseconds from the base, arming number): the order in
/// which timers fire.
type Key = (u64, u64);

/// A record's state as the model knows it.
#[derive(Clone, Copy, Debug)]
struct RecState {
    parked: bool,
    park_seq: u32,
    dead: bool,
}

/// What an action is, to compare one returned by the queue with the
/// model's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Desc {
    kind: Kind,
    /// The record's index in `Model::recs` (`usize::MAX` if none).
    rec: usize,
    id: Option<TimeoutId>,
    /// For a `Wake`: whether its waker is stale.
    stale: bool,
}

/// How a step may change the dead entries (queued entries of timers no
/// longer armed).
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// It adds none: arming moves the previous newest entry into the heap,
    /// and reading the queue only drops dead entries.
    NoNewDead,
    /// A cancellation or `retain_live`: the compaction rule holds after it.
    Compacted,
    /// It changes nothing (a cancel of a timer not armed).
    Unchanged,
}

/// The queue under test, the records its actions hold, and what the queue
/// should hold.
struct Model {
    timers: Timers,
    base: Instant,
    /// The clock, in milliseconds from `base` (at least `PAST`).
    now: u64,
    recs: Vec<Rec>,
    states: Vec<RecState>,
    live: BTreeMap<Key, Timer>,
    /// Every handle issued in this case, with its timer's key.
    issued: Vec<(TimerHandle, Key)>,
    /// Arming numbers, in arming order across teardowns.
    arms: u64,
    /// The most timers armed at once since the queue was made.
    peak: usize,
    /// The timer armed last, while the queue was not read since: its entry
    /// is not in the heap yet, and cancelling it drops the entry.
    fresh: Option<Key>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Model {
    fn new() -> Model {
        let recs: Vec<Rec> = (1..=RECS as u64).map(Rec::idle).collect();
        for r in &recs {
            r.core().mark_parked();
        }
        Model {
            timers: Timers::new(),
            base: Instant::now(),
            now: PAST,
            recs,
            states: vec![
                RecState {
                    parked: true,
                    park_seq: 0,
                    dead: false,
                };
                RECS
            ],
            live: BTreeMap::new(),
            issued: Vec::new(),
            arms: 0,
            peak: 0,
            fresh: None,
        }
    }

    /// Applies one step to the queue and the model, with the checks of the
    /// step itself.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Arm { at, kind, rec } => self.arm(*at, *kind, *rec)?,
            Op::Burst(ats) => {
                let kinds = [Kind::Start, Kind::Interrupt, Kind::Wake];
                for (i, at) in ats.iter().enumerate() {
                    self.arm(*at, kinds[i % kinds.len()], i / kinds.len() % RECS)?;
                }
            }
            Op::Cancel { live, pick, how } => {
                let chosen = if *live {
                    let n = self.live.len();
                    let t = (n > 0).then(|| self.live.iter().nth(usize::from(*pick) % n));
                    t.flatten().map(|(k, t)| (t.h, *k))
                } else {
                    let n = self.issued.len();
                    (n > 0).then(|| self.issued[usize::from(*pick) % n])
                };
                if let Some((h, key)) = chosen {
                    self.cancel(h, key, *how)?;
                }
            }
            Op::CancelMany {
                keep,
                from,
                rev,
                how,
            } => {
                let mut order: Vec<(u64, TimerHandle, Key)> =
                    self.live.iter().map(|(k, t)| (k.1, t.h, *k)).collect();
                order.sort_unstable_by_key(|&(n, ..)| n);
                if !order.is_empty() {
                    let at = usize::from(*from) % order.len();
                    order.rotate_left(at);
                }
                if *rev {
                    order.reverse();
                }
                for (i, (_, h, key)) in order.into_iter().enumerate() {
                    if *keep == 0 || i % keep != 0 {
                        self.cancel(h, key, *how)?;
                    }
                }
            }
            Op::NextDeadline => {
                let before = self.counts();
                self.fresh = None;
                let expected = self.live.keys().next().map(|&(at, _)| self.base + ms(at));
                prop_assert_eq!(self.timers.next_deadline(), expected, "next_deadline()");
                self.step_check(Rule::NoNewDead, before)?;
            }
            Op::Fire(by) => {
                self.now += u64::from(*by);
                self.fresh = None;
                self.fire()?;
            }
            Op::Record { rec, change } => self.change(*rec, *change),
            Op::RetainLive => self.retain_live()?,
            Op::Teardown => {
                let old = std::mem::replace(&mut self.timers, Timers::new());
                drop(old);
                self.live.clear();
                self.peak = 0;
                self.fresh = None;
            }
        }
        Ok(())
    }

    /// (`len()`, `queue_len()`) before a step, for [`Model::step_check`].
    fn counts(&self) -> (usize, usize) {
        (self.timers.len(), self.timers.queue_len())
    }

    /// Arms one timer and checks that it is armed.
    fn arm(&mut self, at: u8, kind: Kind, rec: usize) -> Result<(), TestCaseError> {
        let before = self.counts();
        let at = self.now - PAST + u64::from(at);
        let id = (kind == Kind::Interrupt).then(TimeoutId::next);
        let r = &self.recs[rec];
        let h = self.timers.arm_with(self.base + ms(at), || match id {
            Some(id) => TimerAction::Interrupt(r.clone(), id),
            None if kind == Kind::Wake => TimerAction::Wake(Waker::for_park(r.clone())),
            None => TimerAction::Start(r.clone()),
        });
        prop_assert!(self.timers.is_armed(h), "armed at once");
        let key = (at, self.arms);
        self.arms += 1;
        let park = self.states[rec].park_seq;
        self.live.insert(
            key,
            Timer {
                h,
                kind,
                rec,
                id,
                park,
            },
        );
        self.issued.push((h, key));
        self.fresh = Some(key);
        self.peak = self.peak.max(self.live.len());
        self.step_check(Rule::NoNewDead, before)
    }

    /// Cancels `h` (whose timer has `key`) as `how` says, and checks what
    /// the cancel returned: the timer's action or record if it was armed,
    /// nothing (and no change) if not.
    fn cancel(&mut self, h: TimerHandle, key: Key, how: How) -> Result<(), TestCaseError> {
        let before = self.counts();
        let armed = self.live.get(&key).filter(|t| t.h == h).copied();
        match how {
            How::ToRecord => {
                let r = self.timers.cancel_to_record(h);
                prop_assert_eq!(r.is_some(), armed.is_some(), "cancel_to_record");
                if let (Some(r), Some(t)) = (&r, armed) {
                    prop_assert!(r.ptr_eq(&self.recs[t.rec]), "the timer's record");
                    // The action was dropped; the reference returned
                    // stands in for its one.
                    prop_assert_eq!(r.core().refs(), 1 + self.holding(t.rec));
                }
            }
            How::Held | How::HeldOther => {
                let other = usize::from(matches!(how, How::HeldOther));
                let held = armed.map_or(0, |t| (t.rec + other) % RECS);
                let result = self.timers.cancel_held(h, &self.recs[held]);
                let cancelled = match &result {
                    Ok(c) => *c,
                    Err(r) => {
                        // Only the fallback hands the action's record back.
                        prop_assert!(other == 1, "Err for the record held");
                        let t = armed.expect("an Err only for an armed timer");
                        prop_assert!(r.ptr_eq(&self.recs[t.rec]), "the timer's record");
                        true
                    }
                };
                drop(result);
                prop_assert_eq!(cancelled, armed.is_some(), "cancel_held");
            }
            How::Take => {
                let action = self.timers.cancel(h);
                let got = action.as_ref().map(|a| self.desc(a));
                prop_assert_eq!(got, armed.map(|t| self.expect(&t)), "cancel");
            }
        }
        prop_assert!(!self.timers.is_armed(h), "not armed after a cancel");
        if armed.is_some() {
            if self.fresh == Some(key) {
                self.fresh = None;
                prop_assert!(
                    self.timers.queue_len() < before.1,
                    "the newest timer, cancelled before the queue was read, left its entry"
                );
            }
            self.live.remove(&key);
            self.step_check(Rule::Compacted, before)
        } else {
            self.step_check(Rule::Unchanged, before)
        }
    }

    /// Pops due timers until `pop_due` answers `None`: each must be the
    /// model's earliest live timer due, in (deadline, arming) order.
    fn fire(&mut self) -> Result<(), TestCaseError> {
        let now = self.base + ms(self.now);
        loop {
            let before = self.counts();
            let due = self.live.first_key_value();
            let expected = due
                .filter(|((at, _), _)| *at <= self.now)
                .map(|(k, t)| (*k, self.expect(t)));
            let got = self.timers.pop_due(now);
            let got_desc = got.as_ref().map(|a| self.desc(a));
            prop_assert_eq!(
                got_desc,
                expected.as_ref().map(|(_, d)| d.clone()),
                "pop_due at {} ms",
                self.now
            );
            drop(got);
            let Some((key, _)) = expected else {
                return Ok(());
            };
            self.live.remove(&key);
            self.step_check(Rule::NoNewDead, before)?;
        }
    }

    /// `retain_live`: it must return exactly the actions that can only
    /// reach a dead greenlet (an interrupt or start of a dead record, a
    /// stale waker), and drop their timers.
    fn retain_live(&mut self) -> Result<(), TestCaseError> {
        let before = self.counts();
        let gone: Vec<Key> = self
            .live
            .iter()
            .filter(|(_, t)| match t.kind {
                Kind::Wake => self.is_stale(t),
                Kind::Interrupt | Kind::Start => self.states[t.rec].dead,
            })
            .map(|(k, _)| *k)
            .collect();
        let mut expected: Vec<Desc> = gone.iter().map(|k| self.expect(&self.live[k])).collect();
        let out = self.timers.retain_live();
        let mut got: Vec<Desc> = out.iter().map(|a| self.desc(a)).collect();
        expected.sort_unstable();
        got.sort_unstable();
        prop_assert_eq!(got, expected, "retain_live()");
        // Returned, not yet dropped: the records are still held as before.
        for (i, r) in self.recs.iter().enumerate() {
            prop_assert_eq!(r.core().refs(), 1 + self.holding(i), "refs while held");
        }
        drop(out);
        for k in &gone {
            self.live.remove(k);
        }
        self.step_check(Rule::Compacted, before)
    }

    /// Changes record `rec`'s state as the hub's scheduler would, and the
    /// model's with it.
    fn change(&mut self, rec: usize, change: Change) {
        let core = self.recs[rec].core();
        let s = &mut self.states[rec];
        match change {
            Change::Park if !s.dead => {
                core.mark_parked();
                s.parked = true;
            }
            Change::Unpark if s.parked => {
                core.end_park();
                core.resume();
                s.parked = false;
                s.park_seq = s.park_seq.wrapping_add(1);
            }
            Change::Kill => {
                core.mark_ended();
                s.parked = false;
                s.dead = true;
            }
            _ => {}
        }
    }

    /// Live timers whose action holds record `rec`.
    fn holding(&self, rec: usize) -> usize {
        self.live.values().filter(|t| t.rec == rec).count()
    }

    /// Whether a `Wake` timer's waker is stale: its park has ended.
    fn is_stale(&self, t: &Timer) -> bool {
        let s = &self.states[t.rec];
        !(s.parked && s.park_seq == t.park)
    }

    /// What timer `t`'s action should be.
    fn expect(&self, t: &Timer) -> Desc {
        Desc {
            kind: t.kind,
            rec: t.rec,
            id: t.id,
            stale: t.kind == Kind::Wake && self.is_stale(t),
        }
    }

    /// What an action returned by the queue is.
    fn desc(&self, a: &TimerAction) -> Desc {
        let (kind, rec, id, stale) = match a {
            TimerAction::Wake(w) => (Kind::Wake, w.record(), None, w.is_stale()),
            TimerAction::Interrupt(r, id) => (Kind::Interrupt, r, Some(*id), false),
            TimerAction::Start(r) => (Kind::Start, r, None, false),
        };
        let rec = self.recs.iter().position(|x| x.ptr_eq(rec));
        Desc {
            kind,
            rec: rec.unwrap_or(usize::MAX),
            id,
            stale,
        }
    }

    /// The checks after each single arm, cancel and pop: the count, an
    /// empty queue when no timer is live, and the rule on dead entries.
    fn step_check(&self, rule: Rule, before: (usize, usize)) -> Result<(), TestCaseError> {
        let (len, queued) = self.counts();
        prop_assert_eq!(len, self.live.len(), "len()");
        if len == 0 {
            prop_assert_eq!(queued, 0, "no timer armed: nothing queued");
        }
        let dead = queued.saturating_sub(len);
        match rule {
            Rule::NoNewDead => prop_assert!(
                dead <= before.1.saturating_sub(before.0),
                "a dead entry added: {} queued for {} live, was {:?}",
                queued,
                len,
                before
            ),
            Rule::Compacted => prop_assert!(
                queued <= 2 * len + COMPACT_SLACK + 1,
                "not compacted: {} queued for {} live",
                queued,
                len
            ),
            Rule::Unchanged => prop_assert_eq!((len, queued), before, "changed by a no-op"),
        }
        Ok(())
    }

    /// The checks after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let t = &self.timers;
        prop_assert_eq!(t.len(), self.live.len(), "len()");

        // Every handle ever issued: armed exactly while its timer is live.
        for &(h, key) in &self.issued {
            let live = self.live.get(&key).is_some_and(|t| t.h == h);
            prop_assert_eq!(t.is_armed(h), live, "is_armed of the timer {:?}", key);
        }

        // Each record: one reference for the test, one per action holding it.
        for (i, r) in self.recs.iter().enumerate() {
            prop_assert_eq!(r.core().refs(), 1 + self.holding(i), "refs of record {}", i);
        }

        // Every live timer queued exactly once, at its deadline; the other
        // entries dead.
        let entries: Vec<Entry> = t.heap.iter().map(|Reverse(e)| *e).chain(t.newest).collect();
        prop_assert_eq!(entries.len(), t.queue_len());
        let mut queued: Vec<(Instant, u64)> = entries
            .iter()
            .filter(|e| t.is_live(e))
            .map(|e| (e.deadline, e.seq))
            .collect();
        queued.sort_unstable();
        let expected: Vec<(Instant, u64)> = self
            .live
            .iter()
            .map(|(&(at, _), tm)| (self.base + ms(at), tm.h.seq))
            .collect();
        prop_assert_eq!(queued, expected, "the live timers' entries");
        if t.len() == 0 {
            prop_assert_eq!(t.queue_len(), 0, "no timer armed: nothing queued");
        }

        // The slot table: as large as the most timers armed at once (a
        // free slot is reused before the table grows), each slot armed
        // with an action or free without one, the free ones chained.
        prop_assert_eq!(t.slots.len(), self.peak, "slots");
        let armed = t.slots.iter().filter(|s| s.seq & FREE == 0).count();
        prop_assert_eq!(armed, self.live.len(), "armed slots");
        for s in &t.slots {
            prop_assert_eq!(s.action.is_some(), s.seq & FREE == 0, "an action iff armed");
        }
        let (mut k, mut n) = (t.free, 0);
        while k < t.slots.len() && n <= t.slots.len() {
            prop_assert!(
                t.slots[k].seq & FREE != 0,
                "an armed slot {} on the free list",
                k
            );
            k = (t.slots[k].seq & !FREE) as usize;
            n += 1;
        }
        prop_assert_eq!(
            (k, n),
            (t.slots.len(), t.slots.len() - armed),
            "the free list"
        );
        Ok(())
    }

    /// Drops the queue: every record is released down to the test's own
    /// reference.
    fn finish(mut self) -> Result<(), TestCaseError> {
        drop(std::mem::replace(&mut self.timers, Timers::new()));
        self.live.clear();
        for (i, r) in self.recs.iter().enumerate() {
            prop_assert_eq!(r.core().refs(), 1, "record {} released by the drop", i);
        }
        for &(h, _) in &self.issued {
            prop_assert!(!self.timers.is_armed(h), "a handle of a dropped queue");
            prop_assert!(self.timers.cancel_to_record(h).is_none());
        }
        Ok(())
    }
}

/// Runs `ops` against a fresh queue, checking after every step.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut m = Model::new();
    m.check()?;
    for op in ops {
        m.apply(op)?;
        m.check()?;
    }
    m.finish()
}

/// The paths that drop entries, in a fixed sequence: a burst cancelled out
/// of arming order and compacted, the newest timer cancelled before it
/// reached the heap, a dead newest entry left by `retain_live`, and the
/// rest fired in order until the queue is empty.
#[test]
fn a_cancelled_burst_is_compacted_and_the_rest_fires_in_order() -> Result<(), TestCaseError> {
    let mut m = Model::new();
    let step = |m: &mut Model, op: Op| m.apply(&op).and_then(|()| m.check());
    let ats: Vec<u8> = (0..150).map(|i| (i * 7 % 25) as u8).collect();
    step(&mut m, Op::Burst(ats))?;
    let how = How::ToRecord;
    step(
        &mut m,
        Op::CancelMany {
            keep: 8,
            from: 75,
            rev: true,
            how,
        },
    )?;
    prop_assert_eq!(m.live.len(), 19);
    prop_assert!(m.timers.queue_len() < 100, "compacted");

    let (kind, rec) = (Kind::Wake, 0);
    step(&mut m, Op::Arm { at: 3, kind, rec })?;
    let (h, key) = *m.issued.last().expect("armed");
    let queued = m.timers.queue_len();
    m.cancel(h, key, How::Held)?;
    m.check()?;
    prop_assert_eq!(m.timers.queue_len(), queued - 1, "the newest entry dropped");

    step(&mut m, Op::Arm { at: 3, kind, rec })?;
    let change = Change::Unpark;
    step(&mut m, Op::Record { rec, change })?;
    step(&mut m, Op::RetainLive)?;
    let newest = m.timers.newest.expect("not read since");
    prop_assert!(!m.timers.is_live(&newest), "a dead newest entry");

    step(&mut m, Op::Fire(40))?;
    prop_assert_eq!((m.timers.len(), m.timers.queue_len()), (0, 0));
    m.finish()
}

proptest! {
    #![proptest_config(crate::testing::model_config(128))]

    /// Random sequences of up to 80 queue operations: after each, `len()`,
    /// `is_armed` of every handle issued and the records' reference counts
    /// agree with the model, every live timer is queued once, the slot
    /// table is sound and the queue is as compact as `Timers::compact`
    /// promises; `pop_due` fires exactly the due timers in (deadline,
    /// arming) order, `next_deadline` is the earliest live one, cancels
    /// report whether the timer was armed, and `retain_live` removes
    /// exactly the timers of dead greenlets.
    #[test]
    fn the_timers_agree_with_their_model(ops in prop::collection::vec(op(), 1..=80)) {
        run(&ops)?;
    }
}
