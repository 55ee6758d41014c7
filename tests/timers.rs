//! Timers: deadline order, arming order for equal delays, `sleep` measured
//! from its call, `join_timeout`, no timer left behind, and timers are not
//! starved by a greenlet that keeps yielding.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::hub::stats;
use greenlet::{joinall, park, sleep, spawn, spawn_later, yield_now};

mod support;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let t0 = Instant::now();
    let gs: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|d| {
            let l = log.clone();
            spawn(move || {
                sleep(ms(d)).unwrap();
                l.borrow_mut().push((d, t0.elapsed()));
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    let log = log.borrow();
    assert_eq!(log.iter().map(|e| e.0).collect::<Vec<_>>(), [10, 20, 30]);
    for (d, at) in log.iter() {
        assert!(*at >= ms(*d), "sleep({d} ms) woke after {at:?}");
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(stats().timers, 0);
}

#[test]
fn spawn_later_with_equal_delays_starts_in_spawn_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let t0 = Instant::now();
    let gs: Vec<_> = (0..8)
        .map(|i| {
            let l = log.clone();
            spawn_later(ms(40), move || l.borrow_mut().push(i))
        })
        .collect();
    // Spawned after them with a much shorter delay: starts first.
    let l = log.clone();
    let early = spawn_later(ms(1), move || l.borrow_mut().push(100));
    joinall(&gs, None).unwrap();
    early.join().unwrap();
    assert!(t0.elapsed() >= ms(40));
    assert_eq!(*log.borrow(), [100, 0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn sleep_measures_from_its_call() {
    let g = spawn(|| {
        // Busy work inside the loop turn: a sleep that measured from the
        // turn's start (a cached clock) would return early.
        let busy = Instant::now();
        while busy.elapsed() < ms(30) {
            std::hint::spin_loop();
        }
        let call = Instant::now();
        sleep(ms(20)).unwrap();
        call.elapsed()
    });
    let slept = g.get().unwrap();
    assert!(slept >= ms(20), "slept only {slept:?}");
    assert!(slept < Duration::from_secs(2), "slept {slept:?}");
}

#[test]
fn sleep_zero_is_a_yield() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let g = spawn(move || l.borrow_mut().push("other"));
    log.borrow_mut().push("before");
    sleep(Duration::ZERO).unwrap();
    log.borrow_mut().push("after");
    assert!(g.dead());
    assert_eq!(*log.borrow(), ["before", "other", "after"]);
}

#[test]
fn join_timeout_gives_up_and_leaves_no_timer() {
    // Parked with no timer of its own: only the join's timer is armed.
    let g = spawn(|| park(&"nothing", |_w| {}));
    let t0 = Instant::now();
    assert_eq!(g.join_timeout(ms(20)), Ok(false));
    let took = t0.elapsed();
    assert!(took >= ms(20), "took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(!g.dead());
    assert_eq!(stats().timers, 0, "join_timeout left its timer behind");
    g.kill().unwrap();
    assert_eq!(stats().timers, 0);
}

#[test]
fn join_timeout_returns_true_when_it_finishes() {
    let g = spawn(|| sleep(ms(5)).unwrap());
    let t0 = Instant::now();
    assert_eq!(g.join_timeout(Duration::from_secs(5)), Ok(true));
    assert!(g.dead());
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "waited for the timeout"
    );
    assert_eq!(stats().timers, 0, "join_timeout left its timer behind");
    // Already dead: true at once.
    assert_eq!(g.join_timeout(Duration::ZERO), Ok(true));
}

#[test]
fn killing_a_sleeper_cancels_its_timer() {
    let g = spawn(|| sleep(Duration::from_secs(3600)));
    yield_now();
    assert_eq!(stats().timers, 1);
    let t0 = Instant::now();
    g.kill().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(g.killed());
    assert_eq!(
        stats().timers,
        0,
        "the killed sleeper's timer is still armed"
    );
}

#[test]
fn a_yielding_spinner_does_not_starve_timers() {
    let woke = Rc::new(Cell::new(false));
    let w = woke.clone();
    let t0 = Instant::now();
    let sleeper = spawn(move || {
        sleep(ms(20)).unwrap();
        w.set(true);
        t0.elapsed()
    });
    let spinner = support::spinner(woke.clone(), Duration::from_secs(2));
    let spins = spinner.get().unwrap();
    assert!(
        woke.get(),
        "the sleeper never woke while the spinner yielded"
    );
    assert!(spins > 0);
    let slept = sleeper.get().unwrap();
    assert!(slept >= ms(20), "{slept:?}");
    assert!(slept < Duration::from_secs(1), "{slept:?}");
}
