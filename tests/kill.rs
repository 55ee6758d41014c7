//! Kill: never-started targets, waiting for cleanup, `kill_nowait`, killing
//! oneself, the outcome of a killed greenlet, `killall`, and blocking while
//! the thread unwinds.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{
    getcurrent, killall, sleep, spawn, spawn_later, yield_now, GreenletError, GreenletState,
    Interrupted,
};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Records `"drop <name>"` into the log when dropped.
struct Guard(Log, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.borrow_mut().push(format!("drop {}", self.1));
    }
}

#[test]
fn kill_of_a_never_started_greenlet() {
    let log = log();
    let (l, ll) = (log.clone(), log.clone());
    let g = spawn(move || l.borrow_mut().push("ran".into()));
    g.link(move |_| ll.borrow_mut().push("link".into()));
    assert_eq!(g.state(), GreenletState::NotStarted);

    g.kill().unwrap();
    assert!(g.dead());
    assert!(g.killed());
    assert!(g.successful());
    assert!(
        log.borrow().is_empty(),
        "the link runs in its own greenlet later"
    );

    // Let everything ready run: the killed greenlet never does, its link
    // does.
    yield_now();
    assert_eq!(*log.borrow(), ["link"]);
    assert!(matches!(g.get(), Err(GreenletError::Killed)));
}

#[test]
fn kill_nowait_of_a_never_started_greenlet_is_dead_at_once() {
    let log = log();
    let (l, ll) = (log.clone(), log.clone());
    let guard = Guard(log.clone(), "closure");
    let g = spawn(move || {
        let _g = &guard;
        l.borrow_mut().push("ran".into());
    });
    g.link_value(move |_| ll.borrow_mut().push("link_value".into()));

    g.kill_nowait();
    assert!(g.dead(), "a never-started greenlet is dead on return");
    assert!(g.killed());
    assert!(g.successful());
    assert_eq!(g.state(), GreenletState::Dead);
    // Its closure (and what it captured) is dropped without running.
    assert_eq!(*log.borrow(), ["drop closure"]);

    yield_now();
    assert_eq!(*log.borrow(), ["drop closure", "link_value"]);
}

#[test]
fn kill_of_a_delayed_greenlet_cancels_its_start() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn_later(Duration::from_millis(10), move || r.set(true));
    assert_eq!(greenlet::hub::stats().timers, 1);
    g.kill().unwrap();
    assert!(g.dead() && g.killed());
    assert_eq!(greenlet::hub::stats().timers, 0);
    sleep(Duration::from_millis(20)).unwrap();
    assert!(!ran.get());
}

#[test]
fn kill_waits_for_the_targets_cleanup() {
    let log = log();
    let l = log.clone();
    let g = spawn(move || {
        let _guard = Guard(l.clone(), "target");
        l.borrow_mut().push("parked".into());
        sleep(Duration::from_secs(3600)).unwrap();
        l.borrow_mut().push("woke".into());
    });
    yield_now();
    assert_eq!(*log.borrow(), ["parked"]);
    assert_eq!(g.state(), GreenletState::Parked);

    let t0 = Instant::now();
    g.kill().unwrap();
    // kill() returned only after the target's Drops ran.
    assert_eq!(*log.borrow(), ["parked", "drop target"]);
    assert!(g.dead());
    assert!(g.killed());
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Killing a dead greenlet does nothing.
    g.kill().unwrap();
    assert_eq!(log.borrow().len(), 2);
}

#[test]
fn kill_of_a_ready_greenlet() {
    let log = log();
    let l = log.clone();
    let g = spawn(move || {
        let _guard = Guard(l.clone(), "spinner");
        loop {
            l.borrow_mut().push("spin".into());
            yield_now();
        }
    });
    yield_now();
    assert_eq!(g.state(), GreenletState::Ready);
    g.kill().unwrap();
    assert!(g.killed());
    assert_eq!(*log.borrow(), ["spin", "drop spinner"]);
}

#[test]
fn kill_nowait_returns_at_once_and_the_target_dies_later() {
    let log = log();
    let l = log.clone();
    let g = spawn(move || {
        let _guard = Guard(l.clone(), "target");
        sleep(Duration::from_secs(3600)).unwrap();
    });
    yield_now();
    assert_eq!(g.state(), GreenletState::Parked);

    g.kill_nowait();
    assert!(log.borrow().is_empty(), "kill_nowait must not switch");
    assert!(!g.dead());

    g.join().unwrap();
    assert_eq!(*log.borrow(), ["drop target"]);
    assert!(g.killed());
}

#[test]
fn a_greenlet_can_kill_itself() {
    let log = log();
    let l = log.clone();
    let g = spawn(move || {
        let _guard = Guard(l.clone(), "self");
        l.borrow_mut().push("before".into());
        let _ = getcurrent().kill();
        l.borrow_mut().push("after".into());
        5
    });
    g.join().unwrap();
    assert_eq!(*log.borrow(), ["before", "drop self"]);
    assert!(g.dead());
    assert!(g.killed());
    assert!(g.successful());
    assert!(matches!(g.get(), Err(GreenletError::Killed)));
}

#[test]
fn a_killed_greenlet_is_successful_and_fires_link_value_only() {
    let log = log();
    let (lv, le, la) = (log.clone(), log.clone(), log.clone());
    let g = spawn(|| -> u8 {
        sleep(Duration::from_secs(3600)).unwrap();
        1
    });
    g.link_value(move |_| lv.borrow_mut().push("value".into()));
    g.link_exception(move |_| le.borrow_mut().push("exception".into()));
    g.link(move |_| la.borrow_mut().push("always".into()));
    yield_now();

    g.kill().unwrap();
    assert!(g.successful());
    assert!(!g.panicked());
    assert!(g.panic_message().is_none());
    // Let the links run (they are ready; sleep(ZERO) lets them go first).
    sleep(Duration::ZERO).unwrap();
    assert_eq!(*log.borrow(), ["value", "always"]);
    assert!(matches!(g.get(), Err(GreenletError::Killed)));
}

#[test]
fn killall_of_never_started_greenlets_means_they_never_run() {
    let ran = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let r = ran.clone();
            spawn(move || r.set(r.get() + 1))
        })
        .collect();
    killall(&gs).unwrap();
    assert!(gs.iter().all(|g| g.dead() && g.killed()));
    yield_now();
    assert_eq!(ran.get(), 0);
}

#[test]
fn killall_kills_started_greenlets_and_waits() {
    let log = log();
    let gs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let l = log.clone();
            spawn(move || {
                let _g = Guard(l, name);
                sleep(Duration::from_secs(3600)).unwrap();
            })
        })
        .collect();
    yield_now();
    killall(&gs).unwrap();
    assert_eq!(*log.borrow(), ["drop a", "drop b"]);
    assert!(gs.iter().all(|g| g.killed()));
    assert_eq!(greenlet::hub::stats().timers, 0);
}

/// What a blocking call in a Drop returned, and how long it took.
type Seen = Rc<RefCell<Option<(Result<(), Interrupted>, Duration)>>>;

/// Tries to block in its Drop and records what the sleep returned and how
/// long it took.
struct BlocksInDrop(Seen);

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let t0 = Instant::now();
        let r = sleep(Duration::from_secs(1));
        *self.0.borrow_mut() = Some((r, t0.elapsed()));
    }
}

#[test]
fn blocking_while_panicking_fails_at_once() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let g = spawn(move || {
        let _d = BlocksInDrop(s);
        panic!("panicking with a blocking Drop");
    });
    g.join().unwrap();
    assert!(g.panicked());
    let (r, took) = seen.borrow_mut().take().expect("the Drop ran");
    assert_eq!(r, Err(Interrupted::Unwinding));
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn blocking_while_unwinding_from_a_kill_fails_at_once() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let g = spawn(move || {
        let _d = BlocksInDrop(s);
        sleep(Duration::from_secs(3600)).unwrap();
    });
    yield_now();
    g.kill().unwrap();
    assert!(g.killed());
    let (r, took) = seen.borrow_mut().take().expect("the Drop ran");
    assert_eq!(r, Err(Interrupted::Unwinding));
    assert!(took < Duration::from_millis(500), "took {took:?}");
}
