//! What a greenlet's closure captured and what it returned are each
//! dropped exactly once, whichever way the greenlet ends and whether or
//! not its result is taken; results of every size come back intact.
//!
//! (A record keeps the closure and the result in one slot, and what the
//! slot holds in its core: these are the cases that bookkeeping must get
//! right.)
//!
//! Every `#[test]` runs on its own thread, so it has its own hub.

use std::cell::Cell;
use std::rc::Rc;

use greenlet::{spawn, yield_now, GreenletError};

/// Counts its drops in a shared counter.
struct Tracked(Rc<Cell<u32>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn counter() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

#[test]
fn a_result_that_is_never_taken_is_dropped_with_the_greenlet() {
    let drops = counter();
    let d = drops.clone();
    let g = spawn(move || Tracked(d));
    g.join().unwrap();
    assert_eq!(drops.get(), 0, "the result is kept until taken or dropped");
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_taken_result_is_moved_out_once() {
    let drops = counter();
    let d = drops.clone();
    let g = spawn(move || Tracked(d));
    g.join().unwrap();
    let v = g.try_get().unwrap();
    assert!(matches!(g.try_get(), Err(GreenletError::Taken)));
    assert_eq!(drops.get(), 0);
    drop(v);
    assert_eq!(drops.get(), 1);
    drop(g);
    assert_eq!(drops.get(), 1, "the slot no longer holds the taken result");
}

#[test]
fn a_closure_killed_before_it_runs_drops_its_captures_once() {
    let drops = counter();
    let ran = Rc::new(Cell::new(false));
    let (t, r) = (Tracked(drops.clone()), ran.clone());
    let g = spawn(move || {
        r.set(true);
        drop(t);
    });
    g.kill().unwrap();
    assert!(!ran.get());
    assert_eq!(drops.get(), 1);
    assert!(matches!(g.try_get(), Err(GreenletError::Killed)));
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_closure_whose_handle_is_dropped_before_it_runs_still_runs() {
    let drops = counter();
    let ran = Rc::new(Cell::new(false));
    let (t, r) = (Tracked(drops.clone()), ran.clone());
    drop(spawn(move || {
        r.set(true);
        t
    }));
    assert_eq!(drops.get(), 0);
    yield_now();
    assert!(ran.get());
    assert_eq!(
        drops.get(),
        1,
        "its result, which nobody can take, is dropped"
    );
}

#[test]
fn a_panicking_closure_drops_its_captures_once() {
    let drops = counter();
    let t = Tracked(drops.clone());
    let g = spawn(move || -> Tracked {
        let _keep = &t;
        panic!("on purpose");
    });
    assert!(matches!(g.join(), Ok(())));
    assert!(matches!(g.try_get(), Err(GreenletError::Panicked(_))));
    assert_eq!(drops.get(), 1);
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_killed_greenlet_drops_its_captures_once_and_has_no_result() {
    let drops = counter();
    let t = Tracked(drops.clone());
    let g = spawn(move || -> Tracked {
        let _keep = &t;
        loop {
            yield_now();
        }
    });
    yield_now();
    g.kill().unwrap();
    assert_eq!(drops.get(), 1);
    assert!(matches!(g.try_get(), Err(GreenletError::Killed)));
}

#[test]
fn a_large_closure_with_a_small_result_and_the_reverse() {
    let big = [7u64; 64];
    let small = spawn(move || big.iter().sum::<u64>() as u16);
    let large = spawn(|| {
        let mut a = [0u64; 64];
        for (i, x) in a.iter_mut().enumerate() {
            *x = i as u64 * 3;
        }
        a
    });
    let unit = spawn(|| ());
    let boxed = spawn(|| Box::new(String::from("in a box")));
    assert_eq!(small.get().unwrap(), 448);
    let a = large.get().unwrap();
    assert!(a.iter().enumerate().all(|(i, x)| *x == i as u64 * 3));
    unit.get().unwrap();
    assert_eq!(*boxed.get().unwrap(), "in a box");
}

#[test]
fn many_results_left_in_dead_greenlets_are_all_dropped() {
    let drops = counter();
    let gs: Vec<_> = (0..1000)
        .map(|_| {
            let d = drops.clone();
            spawn(move || Tracked(d))
        })
        .collect();
    greenlet::joinall(&gs, None).unwrap();
    assert_eq!(drops.get(), 0);
    let taken: Vec<_> = gs.iter().step_by(2).map(|g| g.try_get().unwrap()).collect();
    drop(gs);
    assert_eq!(drops.get(), 500);
    drop(taken);
    assert_eq!(drops.get(), 1000);
}
