//! Property tests of the scheduler against a reference model of gevent's
//! rules (proptest, bounded case counts: a few seconds).
//!
//! Random programs of spawn / yield / kill / event / queue operations run on
//! a hub and on a small model of the rules: one FIFO ready queue; a spawned
//! greenlet starts at its turn, in spawn order; `yield` goes to the back;
//! `Event::set` and `Queue::put` schedule the waiters they wake (the
//! longest-waiting getter gets the item) without switching; a kill of a
//! parked greenlet schedules it to die, of a never-started one ends it at
//! once, and a greenlet killed after it was handed an item takes the item
//! with it. The log of what every greenlet did, and which are dead, must be
//! the same: starts are FIFO, no kill is lost (a killed greenlet never does
//! anything again), no wake is lost (every woken waiter goes on).
//!
//! A second property: every started timeout that is not cancelled is
//! delivered to exactly one wait, and a cancelled one never.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use greenlet::sync::{Event, Queue};
use greenlet::{spawn, yield_now, GreenletRef, Interrupted, Timeout, TimeoutId};
use proptest::prelude::*;

const EVENTS: usize = 2;
const QUEUES: usize = 2;

/// What a spawned greenlet does, step by step.
#[derive(Clone, Copy, Debug)]
enum Step {
    Yield,
    Wait(usize),
    Get(usize),
    Set(usize),
    Put(usize),
}

/// What the main greenlet does.
#[derive(Clone, Debug)]
enum Op {
    Spawn(Vec<Step>),
    Set(usize),
    Put(usize),
    /// Kill (without waiting) the greenlet spawned n-th (mod how many).
    Kill(usize),
    Yield,
}

/// One thing a greenlet did: started, finished step `i` (with the item a
/// `Get` received), ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Start(usize),
    Did(usize, usize, Option<u32>),
    End(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Yield),
        (0..EVENTS).prop_map(Step::Wait),
        (0..QUEUES).prop_map(Step::Get),
        (0..EVENTS).prop_map(Step::Set),
        (0..QUEUES).prop_map(Step::Put),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec(step(), 0..5).prop_map(Op::Spawn),
        1 => (0..EVENTS).prop_map(Op::Set),
        1 => (0..QUEUES).prop_map(Op::Put),
        1 => (0..8usize).prop_map(Op::Kill),
        2 => Just(Op::Yield),
    ]
}

/// Runs `ops` on this thread's hub; returns the log and which greenlets are
/// dead at the end (then kills the rest).
fn run_real(ops: &[Op]) -> (Vec<Entry>, Vec<bool>) {
    let log: Rc<RefCell<Vec<Entry>>> = Rc::default();
    let events: Rc<Vec<Event>> = Rc::new((0..EVENTS).map(|_| Event::new()).collect());
    let queues: Rc<Vec<Queue<u32>>> = Rc::new((0..QUEUES).map(|_| Queue::unbounded()).collect());
    let next = Rc::new(Cell::new(0u32));
    let put = {
        let (queues, next) = (queues.clone(), next.clone());
        move |q: usize| {
            let v = next.get();
            next.set(v + 1);
            queues[q].put(v).unwrap();
        }
    };
    let mut gs: Vec<GreenletRef> = Vec::new();
    for op in ops {
        match op {
            Op::Spawn(script) => {
                let id = gs.len();
                let (log, events, queues, put) =
                    (log.clone(), events.clone(), queues.clone(), put.clone());
                let script = script.clone();
                let g = spawn(move || {
                    log.borrow_mut().push(Entry::Start(id));
                    for (i, s) in script.into_iter().enumerate() {
                        let mut got = None;
                        match s {
                            Step::Yield => yield_now(),
                            Step::Wait(e) => events[e].wait().unwrap(),
                            Step::Get(q) => got = Some(queues[q].get().unwrap()),
                            Step::Set(e) => events[e].set(),
                            Step::Put(q) => put(q),
                        }
                        log.borrow_mut().push(Entry::Did(id, i, got));
                    }
                    log.borrow_mut().push(Entry::End(id));
                });
                gs.push((*g).clone());
            }
            Op::Set(e) => events[*e].set(),
            Op::Put(q) => put(*q),
            Op::Kill(i) if !gs.is_empty() => gs[i % gs.len()].kill_nowait(),
            Op::Kill(_) => {}
            Op::Yield => yield_now(),
        }
    }
    let dead = gs.iter().map(|g| g.dead()).collect();
    greenlet::killall(&gs).unwrap();
    let log = log.borrow().clone();
    (log, dead)
}

/// The reference model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ready,
    Parked,
    Dead,
}

struct G {
    script: Vec<Step>,
    pc: usize,
    state: State,
    started: bool,
    kill: bool,
    /// Suspended inside step `pc` (a yield or a wait).
    in_step: bool,
    /// The item a `Get` was handed.
    held: Option<u32>,
}

const MAIN: usize = usize::MAX;

#[derive(Default)]
struct Model {
    gs: Vec<G>,
    ready: VecDeque<usize>,
    set: [bool; EVENTS],
    waiters: [VecDeque<usize>; EVENTS],
    items: [VecDeque<u32>; QUEUES],
    getters: [VecDeque<usize>; QUEUES],
    next: u32,
    log: Vec<Entry>,
}

impl Model {
    fn schedule_if_parked(&mut self, g: usize) {
        if self.gs[g].state == State::Parked {
            self.gs[g].state = State::Ready;
            self.ready.push_back(g);
        }
    }

    fn set_event(&mut self, e: usize) {
        self.set[e] = true;
        while let Some(w) = self.waiters[e].pop_front() {
            self.schedule_if_parked(w);
        }
    }

    fn put(&mut self, q: usize) {
        let v = self.next;
        self.next += 1;
        match self.getters[q].pop_front() {
            // Handed to the longest waiter, even one killed and not yet
            // dead: it takes the item with it.
            Some(w) => {
                self.gs[w].held = Some(v);
                self.schedule_if_parked(w);
            }
            None => self.items[q].push_back(v),
        }
    }

    fn kill(&mut self, g: usize) {
        let s = &mut self.gs[g];
        match s.state {
            State::Dead => {}
            State::Ready if !s.started => s.state = State::Dead,
            State::Ready => s.kill = true,
            State::Parked => {
                s.kill = true;
                s.state = State::Ready;
                self.ready.push_back(g);
            }
        }
    }

    fn die(&mut self, g: usize) {
        self.gs[g].state = State::Dead;
        for l in self.waiters.iter_mut().chain(self.getters.iter_mut()) {
            l.retain(|&w| w != g);
        }
    }

    /// Runs greenlet `g` until it switches away or ends.
    fn run(&mut self, g: usize) {
        if self.gs[g].state != State::Ready {
            return; // a stale queue entry
        }
        if self.gs[g].kill {
            return self.die(g);
        }
        if !self.gs[g].started {
            self.gs[g].started = true;
            self.log.push(Entry::Start(g));
        }
        if self.gs[g].in_step {
            self.gs[g].in_step = false;
            let held = self.gs[g].held.take();
            self.log.push(Entry::Did(g, self.gs[g].pc, held));
            self.gs[g].pc += 1;
        }
        while self.gs[g].pc < self.gs[g].script.len() {
            let pc = self.gs[g].pc;
            let mut got = None;
            match self.gs[g].script[pc] {
                Step::Yield => {
                    self.gs[g].in_step = true;
                    self.ready.push_back(g);
                    return;
                }
                Step::Wait(e) if !self.set[e] => {
                    self.waiters[e].push_back(g);
                    self.gs[g].state = State::Parked;
                    self.gs[g].in_step = true;
                    return;
                }
                Step::Wait(_) => {}
                Step::Get(q) => match self.items[q].pop_front() {
                    Some(v) => got = Some(v),
                    None => {
                        self.getters[q].push_back(g);
                        self.gs[g].state = State::Parked;
                        self.gs[g].in_step = true;
                        return;
                    }
                },
                Step::Set(e) => self.set_event(e),
                Step::Put(q) => self.put(q),
            }
            self.log.push(Entry::Did(g, pc, got));
            self.gs[g].pc += 1;
        }
        self.log.push(Entry::End(g));
        self.gs[g].state = State::Dead;
    }

    fn run_ops(ops: &[Op]) -> (Vec<Entry>, Vec<bool>) {
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Spawn(script) => {
                    m.gs.push(G {
                        script: script.clone(),
                        pc: 0,
                        state: State::Ready,
                        started: false,
                        kill: false,
                        in_step: false,
                        held: None,
                    });
                    m.ready.push_back(m.gs.len() - 1);
                }
                Op::Set(e) => m.set_event(*e),
                Op::Put(q) => m.put(*q),
                Op::Kill(i) if !m.gs.is_empty() => m.kill(i % m.gs.len()),
                Op::Kill(_) => {}
                Op::Yield => {
                    m.ready.push_back(MAIN);
                    while let Some(g) = m.ready.pop_front() {
                        if g == MAIN {
                            break;
                        }
                        m.run(g);
                    }
                }
            }
        }
        let dead = m.gs.iter().map(|g| g.state == State::Dead).collect();
        (m.log, dead)
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn programs_follow_the_reference_model(ops in prop::collection::vec(op(), 1..30)) {
        let mut ops = ops;
        ops.extend([Op::Yield, Op::Yield]);
        let (real_log, real_dead) = run_real(&ops);
        let (model_log, model_dead) = Model::run_ops(&ops);
        prop_assert_eq!(real_log, model_log);
        prop_assert_eq!(real_dead, model_dead);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Timeouts of 10-30 ms, some cancelled at once; the main greenlet then
    /// waits on an event nobody sets until the hub reports that nothing can
    /// wake it.
    #[test]
    fn each_timeout_is_delivered_exactly_once(spec in prop::collection::vec((1u64..4, any::<bool>()), 1..5)) {
        let timeouts: Vec<Timeout> = spec
            .iter()
            .map(|(d, _)| Timeout::start_new(Duration::from_millis(d * 10)))
            .collect();
        let mut live: Vec<TimeoutId> = Vec::new();
        for (t, (_, cancel)) in timeouts.iter().zip(&spec) {
            if *cancel {
                t.cancel();
            } else {
                live.push(t.id());
            }
        }
        let ev = Event::new();
        let mut delivered = Vec::new();
        loop {
            match ev.wait() {
                Err(Interrupted::Timeout(id)) => delivered.push(id),
                Err(Interrupted::LoopExit(_)) => break,
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            prop_assert!(delivered.len() <= live.len(), "{delivered:?} of {live:?}");
        }
        delivered.sort();
        live.sort();
        prop_assert_eq!(delivered, live);
    }
}
