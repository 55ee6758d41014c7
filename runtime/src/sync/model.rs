//! A model-based property test of the primitives of this module: a few
//! greenlets (2 to 6), each running a short random script of operations on
//! one shared [`Queue`] (unbounded, or of capacity 0 to 3), [`JoinableQueue`],
//! [`Semaphore`] (through [`SemaphoreGuard`]s), [`BoundedSemaphore`],
//! [`Lock`] or [`Event`], plain, timed (0 or 1 ms) and non-blocking
//! variants mixed, with yields and kills of one another in between.
//!
//! Every greenlet logs, in one shared log, each operation just before it
//! calls it and its result just after, with what the primitive's queries
//! (`len`, `getters`, `is_full`, `available`, `waiters`, `locked`, `is_set`,
//! `unfinished_tasks`, ...) answer then; a killed greenlet logs its unwind
//! from a drop guard, after its own drops (its guards') ran. The schedule
//! is whatever the hub makes of the scripts (timers included), so the log
//! is not predicted: it is replayed, in log order, on a model of the
//! documented semantics, which must agree with it at every entry. Nothing
//! switches between an operation's effect and its log entry (the effect
//! happens at the call, or, for a waiter, at the call that serves it and at
//! its return or unwind), so the model's state at each entry is exact:
//!
//! - waiters are served in the order they began waiting: a put hands its
//!   item to the longest getter, a get moves the longest putter's item in,
//!   a release hands its permit to the longest waiter, a set (or the last
//!   `task_done`) wakes every waiter, and non-blocking calls do not
//!   overtake waiters;
//! - an operation that needs no wait returns before anything else runs
//!   (waking never switches), with what the model says;
//! - a waiter returns only when served (with what it was handed), or, for
//!   a timed wait that was not served, with its timeout's answer, having
//!   taken nothing (a timed-out `JoinableQueue` put is not counted);
//! - a killed waiter takes nothing and loses nothing, except what it was
//!   handed and had not returned with: a permit passes to the next waiter,
//!   an item is the kill's casualty (as the sources say);
//! - the queries agree with the model after each operation, so the items of
//!   a queue come out in FIFO order, once each, never more than its
//!   capacity queued, and the permits of a semaphore are conserved (the
//!   model asserts free + held + handed-over = the initial count, and at
//!   most one holder of a `Lock`);
//! - when the hub reports a deadlock to the main greenlet
//!   (`Interrupted::LoopExit` from `join`), the greenlets still alive are
//!   exactly those the model has waiting without a deadline and not
//!   served (no lost wake-up, no lost timer); the main greenlet then kills
//!   them one at a time (a kill may release permits and let others go on).
//!   There is no overall `Timeout`: its timer would keep the hub from ever
//!   reporting the deadlock, so such a case would last the whole timeout;
//!   the scripts are finite, so only a hub that never idles could hang;
//! - at the end: the queries once more, the items left in a queue (drained
//!   with `try_get`) are the model's, in order; no greenlet panicked, none
//!   left, and no timer is left armed.
//!
//! Not checked: timing (the timeouts only vary the schedule; 0 ms ones fire
//! at the next loop turn), `AsyncResult`, `Channel` (a `Queue::bounded(0)`
//! is), `RLock`, `Timeout`s and other interruptions of a waiter (no wait
//! here may end with an error: the deadlock report goes to the main
//! greenlet), and a kill of a greenlet that has not started (it never
//! runs, logs nothing, and the model never hears of it, which is right).
//! `task_done` is only called for an item the same greenlet took and has
//! not reported. The model found three bugs, fixed since and each pinned by
//! a fixed scenario at the end: a `JoinableQueue` put killed while it
//! waited stayed counted (`join` never returned); a `task_done` while a
//! put still waited, then that put's timeout, took the count below zero;
//! and a `BoundedSemaphore` accepted a release while its other permit was
//! handed to a waiter that had not run, so killing that waiter left more
//! permits free than its bound.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;

use super::{
    BoundedSemaphore, Event, JoinableQueue, Lock, LockGuard, PutError, Queue, Semaphore,
    SemaphoreGuard,
};
use crate::interrupt::Interrupted;
use crate::{spawn, yield_now, Greenlet, GreenletRef};

/// A greenlet's index in its scenario.
type Gid = usize;

/// How an operation waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// As long as it takes (`put`, `get`, `acquire`, `lock`, `wait`,
    /// `join`).
    Block,
    /// At most this many milliseconds (the `_timeout` variants).
    Ms(u8),
    /// Not at all (`try_put`, `try_get`, `try_acquire`, `try_lock`).
    Try,
}

/// One operation of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Queues: puts an item unique to the greenlet and step.
    Put(Wait),
    /// Queues.
    Get(Wait),
    /// `JoinableQueue`: reports an item this greenlet took (skipped if it
    /// has none unreported).
    TaskDone,
    /// `JoinableQueue::join` (`Block` or `Ms`).
    Join(Wait),
    /// Semaphores and the lock (the `Semaphore` through `acquire_guard`
    /// and its variants).
    Acquire(Wait),
    /// `Semaphore`, `Lock`: drops a guard this greenlet holds (skipped if
    /// none); `BoundedSemaphore`: `release`, held or not.
    Release,
    /// `Event::wait` (`Block` or `Ms`).
    Wait(Wait),
    /// `Event::set`.
    Set,
    /// `Event::clear`.
    Clear,
    /// `yield_now`.
    Yield,
    /// Kills another greenlet (the `n`-th after this one, cyclically, not
    /// counting this one) and waits for its death.
    Kill(usize),
}

impl Op {
    /// Whether a wait of this operation has a deadline.
    fn timed(self) -> bool {
        matches!(
            self,
            Op::Put(Wait::Ms(_))
                | Op::Get(Wait::Ms(_))
                | Op::Join(Wait::Ms(_))
                | Op::Acquire(Wait::Ms(_))
                | Op::Wait(Wait::Ms(_))
        )
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Res {
    /// Done: put, acquired, woken (`true`), joined, set, released, ...
    Ok,
    /// The item got.
    Got(u32),
    /// Not done: full, empty, `false`, `None` (timed out or would wait).
    No,
    /// Refused: `OverReleased`, `TaskDoneTooOften`.
    Refused,
    /// An error no operation here should return.
    Failed(String),
}

/// What the primitive's queries answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Snap {
    Queue {
        len: usize,
        getters: usize,
        putters: usize,
        full: bool,
        /// `JoinableQueue` only.
        unfinished: Option<usize>,
    },
    Sem {
        available: usize,
        waiters: usize,
        locked: bool,
    },
    Lock {
        locked: bool,
    },
    Event {
        set: bool,
        waiters: usize,
    },
}

/// One entry of the shared log.
#[derive(Clone, Debug)]
enum Ev {
    /// Greenlet `g` is about to call `op` (with this item, for a put).
    Begin(Gid, Op, u32),
    /// Its call returned this; then the queries answered that.
    End(Gid, Res, Snap),
    /// It unwound (was killed) in its current operation, after its drops.
    Unwound(Gid),
    /// The main greenlet's `join` reported a deadlock; these were alive.
    Deadlock(Vec<Gid>),
    /// After every greenlet died, the queries answered this.
    Final(Snap),
}

/// The primitive under test (each greenlet holds a handle).
#[derive(Clone, Debug)]
enum Subject {
    Queue(Queue<u32>),
    Joinable(JoinableQueue<u32>),
    Sem(Semaphore),
    Bounded(BoundedSemaphore),
    Lock(Lock),
    Event(Event),
}

impl Subject {
    fn snap(&self) -> Snap {
        let queue = |q: &Queue<u32>, unfinished| Snap::Queue {
            len: q.len(),
            getters: q.getters(),
            putters: q.putters(),
            full: q.is_full(),
            unfinished,
        };
        let sem = |s: &Semaphore| Snap::Sem {
            available: s.available(),
            waiters: s.waiters(),
            locked: s.locked(),
        };
        match self {
            Subject::Queue(q) => queue(q, None),
            Subject::Joinable(q) => queue(q.queue(), Some(q.unfinished_tasks())),
            Subject::Sem(s) => sem(s),
            Subject::Bounded(b) => sem(b.as_semaphore()),
            Subject::Lock(l) => Snap::Lock { locked: l.locked() },
            Subject::Event(e) => Snap::Event {
                set: e.is_set(),
                waiters: e.waiters(),
            },
        }
    }
}

/// What the greenlets share with the main greenlet.
#[derive(Default)]
struct Shared {
    log: RefCell<Vec<Ev>>,
    /// Every greenlet of the scenario, for `Op::Kill`.
    handles: RefCell<Vec<GreenletRef>>,
}

impl Shared {
    fn log(&self, ev: Ev) {
        self.log.borrow_mut().push(ev);
    }
}

/// Logs `Unwound` when dropped before the script's end (a kill).
struct Bye<'a> {
    g: Gid,
    sh: &'a Shared,
    done: bool,
}

impl Drop for Bye<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.sh.log(Ev::Unwound(self.g));
        }
    }
}

fn ms(m: u8) -> Duration {
    Duration::from_millis(m.into())
}

fn failed(e: impl std::fmt::Debug) -> Res {
    Res::Failed(format!("{e:?}"))
}

/// A put's result.
fn put_res(r: Result<(), PutError<u32>>) -> Res {
    match r {
        Ok(()) => Res::Ok,
        Err(PutError::Full(_)) => Res::No,
        Err(e) => failed(e),
    }
}

/// A timed wait's result (`Ok(false)`, `Ok(None)`: timed out).
fn timed_res(r: Result<bool, Interrupted>) -> Res {
    match r {
        Ok(true) => Res::Ok,
        Ok(false) => Res::No,
        Err(e) => failed(e),
    }
}

/// A wait without a deadline's result.
fn wait_res(r: Result<(), Interrupted>) -> Res {
    r.map_or_else(failed, |()| Res::Ok)
}

/// Runs greenlet `g`'s script on `s`, logging each operation.
fn run_script(g: Gid, script: &[Op], s: &Subject, sh: &Shared) {
    // Declared first, dropped last: a kill logs `Unwound` after the held
    // guards below released their permits.
    let mut bye = Bye { g, sh, done: false };
    let mut sem_held: Vec<SemaphoreGuard> = Vec::new();
    let mut lock_held: Vec<LockGuard<'_>> = Vec::new();
    // Items taken from a `JoinableQueue` and not yet reported done.
    let mut taken = 0usize;
    let n = sh.handles.borrow().len();
    // Runs one operation; `false` if it did not apply (and was skipped).
    let mut step = |op: Op, item: u32| -> bool {
        let applies = match (op, s) {
            (Op::TaskDone, _) => taken > 0,
            (Op::Release, Subject::Sem(_)) => !sem_held.is_empty(),
            (Op::Release, Subject::Lock(_)) => !lock_held.is_empty(),
            _ => true,
        };
        if !applies {
            return false;
        }
        sh.log(Ev::Begin(g, op, item));
        let res = match (op, s) {
            (Op::Yield, _) => {
                yield_now();
                Res::Ok
            }
            (Op::Kill(k), _) => {
                let victim = sh.handles.borrow()[(g + 1 + k % (n - 1)) % n].clone();
                wait_res(victim.kill())
            }
            (Op::Put(w), Subject::Queue(q)) => put_res(match w {
                Wait::Block => q.put(item),
                Wait::Ms(m) => q.put_timeout(item, ms(m)),
                Wait::Try => q.try_put(item),
            }),
            (Op::Put(w), Subject::Joinable(q)) => put_res(match w {
                Wait::Block => q.put(item),
                Wait::Ms(m) => q.put_timeout(item, ms(m)),
                Wait::Try => q.try_put(item),
            }),
            (Op::Get(w), Subject::Queue(_) | Subject::Joinable(_)) => {
                let got = match (w, s) {
                    (Wait::Block, Subject::Queue(q)) => q.get().map(Some),
                    (Wait::Block, Subject::Joinable(q)) => q.get().map(Some),
                    (Wait::Ms(m), Subject::Queue(q)) => q.get_timeout(ms(m)),
                    (Wait::Ms(m), Subject::Joinable(q)) => q.get_timeout(ms(m)),
                    (_, Subject::Queue(q)) => Ok(q.try_get().ok()),
                    (_, Subject::Joinable(q)) => Ok(q.try_get().ok()),
                    _ => unreachable!(),
                };
                match got.map_err(failed) {
                    Ok(Some(v)) => {
                        taken += 1;
                        Res::Got(v)
                    }
                    Ok(None) => Res::No,
                    Err(f) => f,
                }
            }
            (Op::TaskDone, Subject::Joinable(q)) => {
                taken -= 1;
                q.task_done().map_or(Res::Refused, |()| Res::Ok)
            }
            (Op::Join(w), Subject::Joinable(q)) => match w {
                Wait::Ms(m) => timed_res(q.join_timeout(ms(m))),
                _ => wait_res(q.join()),
            },
            (Op::Acquire(w), Subject::Sem(sem)) => {
                let guard = match w {
                    Wait::Block => sem.acquire_guard().map(Some),
                    Wait::Ms(m) => sem.acquire_guard_timeout(ms(m)),
                    Wait::Try => Ok(sem.try_acquire_guard()),
                };
                match guard {
                    Ok(Some(guard)) => {
                        sem_held.push(guard);
                        Res::Ok
                    }
                    Ok(None) => Res::No,
                    Err(e) => failed(e),
                }
            }
            (Op::Acquire(w), Subject::Bounded(b)) => match w {
                Wait::Block => wait_res(b.acquire()),
                Wait::Ms(m) => timed_res(b.acquire_timeout(ms(m))),
                Wait::Try => timed_res(Ok(b.try_acquire())),
            },
            (Op::Acquire(w), Subject::Lock(l)) => {
                let guard = match w {
                    Wait::Block => l.lock().map(Some),
                    Wait::Ms(m) => l.lock_timeout(ms(m)),
                    Wait::Try => Ok(l.try_lock()),
                };
                match guard {
                    Ok(Some(guard)) => {
                        lock_held.push(guard);
                        Res::Ok
                    }
                    Ok(None) => Res::No,
                    Err(e) => failed(e),
                }
            }
            (Op::Release, Subject::Sem(_)) => {
                sem_held.pop();
                Res::Ok
            }
            (Op::Release, Subject::Lock(_)) => {
                lock_held.pop();
                Res::Ok
            }
            (Op::Release, Subject::Bounded(b)) => b.release().map_or(Res::Refused, |()| Res::Ok),
            (Op::Wait(w), Subject::Event(e)) => match w {
                Wait::Ms(m) => timed_res(e.wait_timeout(ms(m))),
                _ => wait_res(e.wait()),
            },
            (Op::Set, Subject::Event(e)) => {
                e.set();
                Res::Ok
            }
            (Op::Clear, Subject::Event(e)) => {
                e.clear();
                Res::Ok
            }
            (op, s) => unreachable!("{op:?} is not generated for {s:?}"),
        };
        sh.log(Ev::End(g, res, s.snap()));
        true
    };
    for (i, &op) in script.iter().enumerate() {
        step(op, (g * 100 + i) as u32);
    }
    // Releases what it still holds, logged (a guard dropped at the end of
    // this function would release unseen).
    if matches!(s, Subject::Sem(_) | Subject::Lock(_)) {
        while step(Op::Release, 0) {}
    }
    bye.done = true;
}

/// Which primitive is under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Queue,
    Joinable,
    Sem,
    Bounded,
    Lock,
    Event,
}

/// What a greenlet is doing, in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// Between operations (or not started, or finished).
    Idle,
    /// In an operation that returns this before anything else runs.
    Now(Op, Res),
    /// Waiting in one of the model's lists.
    Parked(Op),
    /// Was waiting and was served: returns this when it runs.
    Served(Op, Res),
    /// Yielding or killing: returns `Ok` some time later.
    Switching,
    /// Unwound by a kill.
    Gone,
}

/// The documented semantics of the primitive under test.
#[derive(Debug)]
struct Model {
    kind: Kind,
    /// Queues: the capacity (`None`: unbounded), the items, the waiting
    /// getters and putters (with their items), in wait order.
    cap: Option<usize>,
    items: VecDeque<u32>,
    getters: VecDeque<Gid>,
    putters: VecDeque<(Gid, u32)>,
    /// `JoinableQueue`: unfinished tasks (counted from the start of a put,
    /// as `put_with` documents), and the greenlets in `join`.
    unfinished: usize,
    joiners: VecDeque<Gid>,
    /// Semaphores, the lock: free permits, and how many there were.
    permits: usize,
    initial: usize,
    /// Waiters of a semaphore, the lock or the event, in wait order.
    waiters: VecDeque<Gid>,
    /// `Semaphore`, `Lock`: permits each greenlet holds (as guards).
    held: Vec<usize>,
    /// The event's flag.
    set: bool,
    pending: Vec<Pending>,
    /// Set by an operation that returns at once: the next entry must be
    /// that greenlet's `End` (nothing else runs in between).
    now: Option<Gid>,
}

impl Model {
    fn new(subject: &Subject, greenlets: usize) -> Model {
        let (kind, cap, permits) = match subject {
            Subject::Queue(q) => (Kind::Queue, q.capacity(), 0),
            Subject::Joinable(q) => (Kind::Joinable, q.queue().capacity(), 0),
            Subject::Sem(s) => (Kind::Sem, None, s.available()),
            Subject::Bounded(b) => (Kind::Bounded, None, b.available()),
            Subject::Lock(_) => (Kind::Lock, None, 1),
            Subject::Event(_) => (Kind::Event, None, 0),
        };
        Model {
            kind,
            cap,
            items: VecDeque::new(),
            getters: VecDeque::new(),
            putters: VecDeque::new(),
            unfinished: 0,
            joiners: VecDeque::new(),
            permits,
            initial: permits,
            waiters: VecDeque::new(),
            held: vec![0; greenlets],
            set: false,
            pending: vec![Pending::Idle; greenlets],
            now: None,
        }
    }

    /// What the queries should answer now.
    fn snap(&self) -> Snap {
        let locked = self.permits == 0 || !self.waiters.is_empty();
        match self.kind {
            Kind::Queue | Kind::Joinable => Snap::Queue {
                len: self.items.len(),
                getters: self.getters.len(),
                putters: self.putters.len(),
                // `is_full`: whether a put would wait.
                full: self.getters.is_empty() && self.cap.is_some_and(|c| self.items.len() >= c),
                unfinished: (self.kind == Kind::Joinable).then_some(self.unfinished),
            },
            Kind::Sem | Kind::Bounded => Snap::Sem {
                available: self.permits,
                waiters: self.waiters.len(),
                locked,
            },
            Kind::Lock => Snap::Lock { locked },
            Kind::Event => Snap::Event {
                set: self.set,
                waiters: self.waiters.len(),
            },
        }
    }

    /// Hands `res` to the waiter `g` (just taken off its list).
    fn serve(&mut self, g: Gid, res: Res) {
        match self.pending[g] {
            Pending::Parked(op) => self.pending[g] = Pending::Served(op, res),
            ref p => panic!("the model listed greenlet {g} while {p:?}"),
        }
    }

    /// One task fewer; the last one wakes every `join`.
    fn finish_one(&mut self) {
        self.unfinished = (self.unfinished.checked_sub(1)).expect("the model's task count");
        if self.unfinished == 0 {
            for j in std::mem::take(&mut self.joiners) {
                self.serve(j, Res::Ok);
            }
        }
    }

    /// The count of a put whose item was never taken, if a `task_done`
    /// did not spend it already (the count is taken before the wait).
    fn take_back(&mut self) {
        if self.unfinished > 0 {
            self.finish_one();
        }
    }

    /// Permits handed to waiters that have not run yet.
    fn handed(&self) -> usize {
        (self.pending.iter())
            .filter(|p| matches!(p, Pending::Served(Op::Acquire(_), Res::Ok)))
            .count()
    }

    /// A permit back: to the longest waiter, else to the count.
    fn release_one(&mut self) {
        match self.waiters.pop_front() {
            Some(w) => self.serve(w, Res::Ok),
            None => self.permits += 1,
        }
    }

    /// Takes `g` off whichever list it waits in.
    fn unlist(&mut self, g: Gid) {
        self.getters.retain(|&w| w != g);
        self.putters.retain(|&(w, _)| w != g);
        self.waiters.retain(|&w| w != g);
        self.joiners.retain(|&w| w != g);
    }

    /// Greenlet `g` calls `op`: its effect, and what `g` does then.
    fn begin(&mut self, g: Gid, op: Op, item: u32) -> Pending {
        let park = |list: &mut VecDeque<Gid>| {
            list.push_back(g);
            Pending::Parked(op)
        };
        let now = |res| Pending::Now(op, res);
        match op {
            Op::Yield | Op::Kill(_) => Pending::Switching,
            Op::Put(w) => {
                if self.kind == Kind::Joinable {
                    self.unfinished += 1;
                }
                if let Some(getter) = self.getters.pop_front() {
                    self.serve(getter, Res::Got(item));
                    now(Res::Ok)
                } else if self.cap.is_none_or(|c| self.items.len() < c) {
                    self.items.push_back(item);
                    now(Res::Ok)
                } else if w == Wait::Try {
                    if self.kind == Kind::Joinable {
                        self.take_back();
                    }
                    now(Res::No)
                } else {
                    self.putters.push_back((g, item));
                    Pending::Parked(op)
                }
            }
            Op::Get(w) => {
                if let Some(v) = self.items.pop_front() {
                    // Room for the longest putter's item.
                    if let Some((p, pv)) = self.putters.pop_front() {
                        self.items.push_back(pv);
                        self.serve(p, Res::Ok);
                    }
                    now(Res::Got(v))
                } else if let Some((p, pv)) = self.putters.pop_front() {
                    // Capacity 0: straight from the putter.
                    self.serve(p, Res::Ok);
                    now(Res::Got(pv))
                } else if w == Wait::Try {
                    now(Res::No)
                } else {
                    park(&mut self.getters)
                }
            }
            Op::TaskDone if self.unfinished == 0 => now(Res::Refused),
            Op::TaskDone => {
                self.finish_one();
                now(Res::Ok)
            }
            Op::Join(_) if self.unfinished == 0 => now(Res::Ok),
            Op::Join(_) => park(&mut self.joiners),
            Op::Acquire(_) if self.permits > 0 && self.waiters.is_empty() => {
                self.permits -= 1;
                now(Res::Ok)
            }
            Op::Acquire(Wait::Try) => now(Res::No),
            Op::Acquire(_) => park(&mut self.waiters),
            Op::Release => {
                // "Holds all its permits": every one is free or handed to
                // a waiter that has not run yet.
                if self.kind == Kind::Bounded && self.permits + self.handed() >= self.initial {
                    return now(Res::Refused);
                }
                if matches!(self.kind, Kind::Sem | Kind::Lock) {
                    self.held[g] -= 1;
                }
                self.release_one();
                now(Res::Ok)
            }
            Op::Wait(_) if self.set => now(Res::Ok),
            Op::Wait(_) => park(&mut self.waiters),
            Op::Set => {
                self.set = true;
                for w in std::mem::take(&mut self.waiters) {
                    self.serve(w, Res::Ok);
                }
                now(Res::Ok)
            }
            Op::Clear => {
                self.set = false;
                now(Res::Ok)
            }
        }
    }

    /// Greenlet `g` returned `res`: what it should have returned.
    fn end(&mut self, g: Gid, res: &Res) -> Result<(), String> {
        let (op, expected) = match std::mem::replace(&mut self.pending[g], Pending::Idle) {
            Pending::Now(op, r) | Pending::Served(op, r) => (Some(op), r),
            Pending::Switching => (None, Res::Ok),
            // Not served: only a deadline ends the wait, and the waiter
            // leaves having taken nothing (a `JoinableQueue` put is not
            // counted then).
            Pending::Parked(op) if op.timed() => {
                self.unlist(g);
                if self.kind == Kind::Joinable && matches!(op, Op::Put(_)) {
                    self.take_back();
                }
                (Some(op), Res::No)
            }
            p => return Err(format!("greenlet {g} returned {res:?} while {p:?}")),
        };
        if *res != expected {
            return Err(format!("greenlet {g} returned {res:?}, not {expected:?}"));
        }
        if matches!(op, Some(Op::Acquire(_)))
            && *res == Res::Ok
            && matches!(self.kind, Kind::Sem | Kind::Lock)
        {
            self.held[g] += 1;
        }
        Ok(())
    }

    /// Greenlet `g` unwound (killed) in its current operation, then its
    /// guards released their permits.
    fn unwound(&mut self, g: Gid) -> Result<(), String> {
        match std::mem::replace(&mut self.pending[g], Pending::Gone) {
            Pending::Parked(op) => {
                self.unlist(g);
                // A put that did not complete does not count.
                if self.kind == Kind::Joinable && matches!(op, Op::Put(_)) {
                    self.take_back();
                }
            }
            // Handed a permit: it passes on. (An item handed to a getter
            // is lost with it; a putter's item was taken; a woken waiter
            // had nothing.)
            Pending::Served(Op::Acquire(_), Res::Ok) => self.release_one(),
            Pending::Served(..) | Pending::Switching => {}
            p => return Err(format!("greenlet {g} unwound while {p:?}")),
        }
        for _ in 0..std::mem::take(&mut self.held[g]) {
            self.release_one();
        }
        Ok(())
    }

    /// Replays one log entry.
    fn apply(&mut self, ev: &Ev) -> Result<(), String> {
        if let Some(g) = self.now.take() {
            if !matches!(ev, Ev::End(e, ..) if *e == g) {
                return Err(format!(
                    "greenlet {g}'s call should have returned before anything else ran"
                ));
            }
        }
        match ev {
            Ev::Begin(g, op, item) => {
                if self.pending[*g] != Pending::Idle {
                    return Err(format!("greenlet {g} began while {:?}", self.pending[*g]));
                }
                let p = self.begin(*g, *op, *item);
                if matches!(p, Pending::Now(..)) {
                    self.now = Some(*g);
                }
                self.pending[*g] = p;
            }
            Ev::End(g, res, snap) => {
                self.end(*g, res)?;
                self.check_snap(snap)?;
            }
            Ev::Unwound(g) => self.unwound(*g)?,
            Ev::Deadlock(alive) => {
                for (g, p) in self.pending.iter().enumerate() {
                    let stuck = matches!(p, Pending::Parked(op) if !op.timed());
                    if alive.contains(&g) != stuck {
                        return Err(format!(
                            "greenlet {g} is {} at the deadlock report, but {p:?} in the model",
                            if alive.contains(&g) { "alive" } else { "dead" }
                        ));
                    }
                }
            }
            Ev::Final(snap) => {
                if let Some(g) = self
                    .pending
                    .iter()
                    .position(|p| !matches!(p, Pending::Idle | Pending::Gone))
                {
                    return Err(format!("greenlet {g} died {:?}", self.pending[g]));
                }
                self.check_snap(snap)?;
            }
        }
        self.check_permits();
        Ok(())
    }

    fn check_snap(&self, snap: &Snap) -> Result<(), String> {
        let expected = self.snap();
        if *snap == expected {
            Ok(())
        } else {
            Err(format!("the queries answered {snap:?}, not {expected:?}"))
        }
    }

    /// The model's own bookkeeping: no more permits than there were, none
    /// lost, and no queue over its capacity.
    fn check_permits(&self) {
        if let Some(c) = self.cap {
            assert!(self.items.len() <= c, "{self:?}");
        }
        match self.kind {
            Kind::Sem | Kind::Lock => {
                let handed = self
                    .pending
                    .iter()
                    .filter(|p| {
                        matches!(
                            p,
                            Pending::Now(Op::Acquire(_), Res::Ok)
                                | Pending::Served(Op::Acquire(_), Res::Ok)
                        )
                    })
                    .count();
                let held: usize = self.held.iter().sum();
                assert_eq!(self.permits + held + handed, self.initial, "{self:?}");
            }
            Kind::Bounded => assert!(self.permits <= self.initial, "{self:?}"),
            _ => {}
        }
    }
}

/// Runs `scripts` on `subject`, one greenlet each, until all are dead
/// (killing one at each deadlock report), then replays the log on the
/// model.
fn run(subject: &Subject, scripts: &[Vec<Op>]) -> Result<(), TestCaseError> {
    let mut model = Model::new(subject, scripts.len());
    let sh = Rc::new(Shared::default());
    let gs: Vec<Greenlet<()>> = scripts
        .iter()
        .enumerate()
        .map(|(g, script)| {
            let (script, s, sh) = (script.clone(), subject.clone(), sh.clone());
            spawn(move || run_script(g, &script, &s, &sh))
        })
        .collect();
    // Before any of them runs.
    *sh.handles.borrow_mut() = gs.iter().map(|g| g.as_ref()).collect();
    loop {
        match gs.iter().try_for_each(|g| g.join()) {
            Ok(()) => break,
            Err(Interrupted::LoopExit(_)) => {
                let alive: Vec<Gid> = (0..gs.len()).filter(|&g| !gs[g].dead()).collect();
                prop_assert!(!alive.is_empty(), "a deadlock report with all dead");
                sh.log(Ev::Deadlock(alive.clone()));
                gs[alive[0]].kill()?;
            }
            Err(e) => return Err(TestCaseError::fail(format!("join: {e}"))),
        }
    }
    sh.log(Ev::Final(subject.snap()));
    sh.handles.borrow_mut().clear();
    for (g, gl) in gs.iter().enumerate() {
        prop_assert!(
            !gl.panicked(),
            "greenlet {g} panicked: {:?}",
            gl.panic_message()
        );
    }
    let stats = crate::hub::stats();
    prop_assert_eq!((stats.greenlets, stats.timers), (0, 0), "left behind");
    let left: Vec<u32> = match subject {
        Subject::Queue(q) => std::iter::from_fn(|| q.try_get().ok()).collect(),
        Subject::Joinable(q) => std::iter::from_fn(|| q.try_get().ok()).collect(),
        _ => Vec::new(),
    };
    let log = sh.log.take();
    for (i, ev) in log.iter().enumerate() {
        if let Err(e) = model.apply(ev) {
            let lines: Vec<String> = log
                .iter()
                .enumerate()
                .map(|(i, ev)| format!("{i:4}: {ev:?}"))
                .collect();
            return Err(TestCaseError::fail(format!(
                "at entry {i}: {e}\n{}",
                lines.join("\n")
            )));
        }
    }
    prop_assert_eq!(left, Vec::from(model.items), "the items left");
    Ok(())
}

fn wait() -> impl Strategy<Value = Wait> {
    prop_oneof![
        4 => Just(Wait::Block),
        2 => Just(Wait::Ms(0)),
        1 => Just(Wait::Ms(1)),
        3 => Just(Wait::Try),
    ]
}

/// A wait without a `Try` variant.
fn timed() -> impl Strategy<Value = Wait> {
    prop_oneof![
        2 => Just(Wait::Block),
        2 => Just(Wait::Ms(0)),
        1 => Just(Wait::Ms(1)),
    ]
}

fn queue_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => wait().prop_map(Op::Put),
        5 => wait().prop_map(Op::Get),
        1 => Just(Op::Yield),
        1 => (0..5usize).prop_map(Op::Kill),
    ]
}

fn joinable_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => wait().prop_map(Op::Put),
        5 => wait().prop_map(Op::Get),
        3 => Just(Op::TaskDone),
        2 => timed().prop_map(Op::Join),
        1 => Just(Op::Yield),
        1 => (0..5usize).prop_map(Op::Kill),
    ]
}

fn sem_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => wait().prop_map(Op::Acquire),
        4 => Just(Op::Release),
        1 => Just(Op::Yield),
        1 => (0..5usize).prop_map(Op::Kill),
    ]
}

/// For `BoundedSemaphore`: as for `Semaphore` (a killed holder's permit
/// is lost with it: a bounded semaphore's release is explicit, no guard).
fn bounded_op() -> impl Strategy<Value = Op> {
    sem_op()
}

fn event_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => timed().prop_map(Op::Wait),
        2 => Just(Op::Set),
        2 => Just(Op::Clear),
        1 => Just(Op::Yield),
        1 => (0..5usize).prop_map(Op::Kill),
    ]
}

/// Scripts of 2 to 6 greenlets, of up to 8 operations each.
fn scripts(op: impl Strategy<Value = Op>) -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op, 0..=8), 2..=6)
}

proptest! {
    #![proptest_config(crate::testing::model_config(96))]

    /// A queue, unbounded or of capacity 0 to 3: FIFO hand-offs both
    /// ways, `len`, `getters`, `putters`, `is_full`.
    #[test]
    fn queue_agrees_with_the_model(
        cap in prop::option::of(0..=3usize),
        scripts in scripts(queue_op()),
    ) {
        let q = cap.map_or_else(Queue::unbounded, Queue::bounded);
        run(&Subject::Queue(q), &scripts)?;
    }

    /// A joinable queue: a queue's hand-offs, the task count, `join`.
    #[test]
    fn joinable_queue_agrees_with_the_model(
        cap in prop::option::of(0..=3usize),
        scripts in scripts(joinable_op()),
    ) {
        let q = cap.map_or_else(JoinableQueue::unbounded, JoinableQueue::bounded);
        run(&Subject::Joinable(q), &scripts)?;
    }

    /// A semaphore of 0 to 3 permits, taken as guards and released by
    /// their holders: FIFO hand-offs, permits conserved.
    #[test]
    fn semaphore_agrees_with_the_model(n in 0..=3usize, scripts in scripts(sem_op())) {
        run(&Subject::Sem(Semaphore::new(n)), &scripts)?;
    }

    /// A bounded semaphore released by anyone: `OverReleased` exactly
    /// when it holds all its permits and nobody waits.
    #[test]
    fn bounded_semaphore_agrees_with_the_model(
        n in 0..=3usize,
        scripts in scripts(bounded_op()),
    ) {
        run(&Subject::Bounded(BoundedSemaphore::new(n)), &scripts)?;
    }

    /// A lock: one holder at a time, FIFO, a greenlet that locks it twice
    /// waits for itself (until the deadlock report).
    #[test]
    fn lock_agrees_with_the_model(scripts in scripts(sem_op())) {
        run(&Subject::Lock(Lock::new()), &scripts)?;
    }

    /// An event: `set` wakes every waiter (`true` even if cleared before
    /// it runs), `wait` returns at once while set.
    #[test]
    fn event_agrees_with_the_model(scripts in scripts(event_op())) {
        run(&Subject::Event(Event::new()), &scripts)?;
    }
}

// Bugs the model found (fixed since), each reduced to a fixed scenario.

/// Found as: capacity 0, one greenlet in `put`, no getter; at the deadlock
/// report the main greenlet kills it, and `unfinished_tasks` is still 1.
#[test]
fn a_killed_joinable_put_is_not_counted() {
    let q = JoinableQueue::bounded(0);
    let q2 = q.clone();
    let putter = spawn(move || q2.put(1u32));
    yield_now(); // it waits: nobody gets
    assert_eq!(
        q.unfinished_tasks(),
        1,
        "counted while it waits (by design)"
    );
    putter.kill().unwrap();
    assert_eq!(q.queue().len(), 0, "the item was not put");
    assert_eq!(q.unfinished_tasks(), 0, "so it does not count");
    assert!(q.join_timeout(Duration::ZERO).unwrap(), "and join returns");
}

/// Found (with `task_done` allowed without an item taken) as: capacity 0,
/// one greenlet in `put_timeout(1, 0 ms)`, another calls `task_done`; the
/// putter then panicked in `JoinableQueue::finish_one` (the count went
/// below 0). A put is counted before its item can be taken, so that a
/// getter that takes it straight from the putter can report it done
/// before the put returns; a `task_done` is allowed then, and the failed
/// put does not take the count back a second time.
#[test]
fn a_task_done_during_a_waiting_put_that_then_fails_keeps_the_count() {
    let q = JoinableQueue::bounded(0);
    let q2 = q.clone();
    let putter = spawn(move || q2.put_timeout(1u32, Duration::ZERO).is_err());
    yield_now(); // it waits (its deadline is due, but it runs after us)
    assert_eq!(q.task_done(), Ok(()), "the waiting put counts");
    assert!(putter.get().expect("the put times out, without a panic"));
    assert_eq!(q.unfinished_tasks(), 0);
    assert!(q.join_timeout(Duration::ZERO).unwrap(), "join returns");
}

/// Found as: `BoundedSemaphore::new(0)`, a greenlet waits in `acquire`,
/// another `release`s (accepted: it hands the permit over) and kills the
/// waiter before it runs; the permit passes on into the count, 1 > 0.
/// The same with a bound of 1, below: the check in `release` sees no
/// permit out while one is handed to a waiter that has not run.
#[test]
fn a_bounded_semaphore_never_holds_more_than_its_bound() {
    let sem = BoundedSemaphore::new(1);
    sem.acquire().unwrap();
    let s = sem.clone();
    let waiter = spawn(move || s.acquire());
    yield_now(); // it waits
    sem.release().unwrap(); // handed to the waiter, which has not run
    let again = sem.release(); // one too many: accepted
    waiter.kill().unwrap(); // its permit passes on
    assert!(
        sem.available() <= 1,
        "{} permits free of 1 (the second release: {again:?})",
        sem.available()
    );
}
