//! Links: run after death, in registration order, each in a new greenlet;
//! links to dead greenlets run at the next turn; a panicking link does not
//! stop later ones; `unlink`; which links fire for which outcome.

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{getcurrent, park, spawn, yield_now, GreenletRef, Waker};

/// A one-shot wake-up for the main greenlet, built on park/wake.
#[derive(Clone, Default)]
struct Signal(Rc<RefCell<Option<Waker>>>);

impl Signal {
    /// Parks until `set`; fails (LoopExit) if nothing will ever set it.
    fn wait(&self) {
        park(&"a link's signal", |w| *self.0.borrow_mut() = Some(w))
            .expect("the signal was never set");
    }

    fn set(&self) {
        if let Some(w) = self.0.borrow_mut().take() {
            w.wake();
        }
    }
}

/// What one link saw when it ran.
#[derive(Debug)]
struct Fired {
    link: u32,
    /// The id of the greenlet running the link.
    runner: u64,
    /// The greenlet the link was called for, and whether it was dead then.
    target: GreenletRef,
    target_dead: bool,
}

type Log = Rc<RefCell<Vec<Fired>>>;

fn recorder(log: &Log, link: u32, done: Option<Signal>) -> impl FnOnce(GreenletRef) + 'static {
    let log = log.clone();
    move |target| {
        log.borrow_mut().push(Fired {
            link,
            runner: getcurrent().id(),
            target_dead: target.dead(),
            target,
        });
        if let Some(s) = done {
            s.set();
        }
    }
}

#[test]
fn links_fire_after_death_in_order_each_in_a_new_greenlet() {
    let log: Log = Rc::default();
    let done = Signal::default();
    let g = spawn(|| {
        yield_now();
        "result"
    });
    for i in 0..3 {
        g.link(recorder(&log, i, None));
    }
    g.link(recorder(&log, 3, Some(done.clone())));
    yield_now();
    assert!(!g.dead());
    assert!(log.borrow().is_empty(), "no link may fire before death");

    done.wait();
    let fired = log.borrow();
    assert_eq!(
        fired.iter().map(|f| f.link).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let mut runners: Vec<u64> = fired.iter().map(|f| f.runner).collect();
    for f in fired.iter() {
        assert!(f.target_dead, "link {} ran before death", f.link);
        assert_eq!(f.target, *g, "a link receives the dead greenlet");
        assert_ne!(f.runner, g.id(), "a link runs in a new greenlet");
        assert_ne!(f.runner, 0, "a link does not run in the main greenlet");
    }
    runners.sort_unstable();
    runners.dedup();
    assert_eq!(runners.len(), 4, "each link runs in its own greenlet");
}

#[test]
fn linking_to_a_dead_greenlet_runs_at_the_next_turn() {
    let log: Log = Rc::default();
    let g = spawn(|| ());
    g.join().unwrap();
    assert!(g.dead());

    g.link(recorder(&log, 1, None));
    g.link_value(recorder(&log, 2, None));
    g.link_exception(recorder(&log, 3, None));
    assert!(
        log.borrow().is_empty(),
        "link must not run synchronously inside link()"
    );
    yield_now();
    let fired = log.borrow();
    assert_eq!(fired.iter().map(|f| f.link).collect::<Vec<_>>(), [1, 2]);
    assert!(fired.iter().all(|f| f.runner != 0 && f.runner != g.id()));
}

#[test]
fn a_panicking_link_does_not_stop_later_links() {
    let log: Log = Rc::default();
    let done = Signal::default();
    let g = spawn(|| 1);
    g.link(recorder(&log, 1, None));
    let l = log.clone();
    g.link(move |target| {
        l.borrow_mut().push(Fired {
            link: 2,
            runner: getcurrent().id(),
            target_dead: target.dead(),
            target,
        });
        panic!("a link callback panics");
    });
    g.link(recorder(&log, 3, Some(done.clone())));
    done.wait();
    assert_eq!(
        log.borrow().iter().map(|f| f.link).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(g.successful(), "a failing link does not change the target");
}

#[test]
fn unlink_removes_one_link() {
    let log: Log = Rc::default();
    let done = Signal::default();
    let g = spawn(|| ());
    let _a = g.link(recorder(&log, 1, None));
    let b = g.link(recorder(&log, 2, None));
    let _c = g.link(recorder(&log, 3, Some(done.clone())));
    assert!(g.unlink(b));
    assert!(!g.unlink(b), "a link is removed once");
    done.wait();
    yield_now();
    assert_eq!(
        log.borrow().iter().map(|f| f.link).collect::<Vec<_>>(),
        [1, 3]
    );
}

#[test]
fn unlink_of_a_fired_link_finds_nothing() {
    let log: Log = Rc::default();
    let done = Signal::default();
    let g = spawn(|| ());
    let a = g.link(recorder(&log, 1, Some(done.clone())));
    done.wait();
    assert_eq!(log.borrow().len(), 1);
    assert!(!g.unlink(a));
}

#[test]
fn link_value_and_link_exception_follow_the_outcome() {
    let log: Log = Rc::default();
    let done = Signal::default();
    let bad = spawn(|| -> u8 { panic!("link test panic") });
    bad.link_value(recorder(&log, 1, None));
    bad.link_exception(recorder(&log, 2, None));
    bad.link(recorder(&log, 3, None));
    let good = spawn(|| 5u8);
    good.link_exception(recorder(&log, 4, None));
    good.link_value(recorder(&log, 5, None));
    good.link(recorder(&log, 6, Some(done.clone())));
    done.wait();
    assert!(bad.panicked() && !bad.successful());
    assert!(good.successful());
    assert_eq!(
        log.borrow().iter().map(|f| f.link).collect::<Vec<_>>(),
        [2, 3, 5, 6]
    );
}
