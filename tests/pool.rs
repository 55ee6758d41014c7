//! Group and Pool.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenlet::pool::{Group, Pool};
use greenlet::sync::Event;
use greenlet::{sleep, spawn, yield_now, GreenletError};

const MS: Duration = Duration::from_millis(1);

#[test]
fn pool_spawn_blocks_while_full() {
    let pool = Pool::new(2);
    let gate = Event::new();
    let started = Rc::new(Cell::new(0));
    let mk = |gate: Event, started: Rc<Cell<i32>>| {
        move || {
            started.set(started.get() + 1);
            gate.wait().unwrap();
        }
    };
    pool.spawn(mk(gate.clone(), started.clone())).unwrap();
    pool.spawn(mk(gate.clone(), started.clone())).unwrap();
    assert!(pool.full());
    assert_eq!(pool.free_count(), 0);
    // The third spawn waits in another greenlet until a slot frees.
    let (p, g2, s2) = (pool.clone(), gate.clone(), started.clone());
    let third = spawn(move || p.spawn(mk(g2, s2)).map(|_| ()));
    sleep(5 * MS).unwrap();
    assert_eq!(started.get(), 2);
    assert!(!third.dead(), "spawn is waiting for a slot");
    gate.set();
    third.get().unwrap().unwrap();
    pool.join().unwrap();
    assert_eq!(started.get(), 3);
    assert_eq!(pool.free_count(), 2);
    pool.wait_available().unwrap();
}

#[test]
fn map_keeps_input_order() {
    let pool = Pool::new(3);
    let out = pool
        .map([30u64, 10, 20, 0], |ms| {
            sleep(Duration::from_millis(ms)).unwrap();
            ms
        })
        .unwrap();
    assert_eq!(out, [30, 10, 20, 0]);
}

#[test]
fn map_surfaces_a_task_panic() {
    let pool = Pool::new(2);
    let r = pool.map(0..4, |i| {
        if i == 2 {
            panic!("task {i} failed");
        }
        i
    });
    match r {
        Err(GreenletError::Panicked(p)) => {
            assert_eq!(greenlet::panic_message(&*p), "task 2 failed")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn imap_keeps_order_and_imap_unordered_yields_in_completion_order() {
    let pool = Pool::new(4);
    let ordered: Vec<u64> = pool
        .imap(vec![30u64, 10, 20], |ms| {
            sleep(Duration::from_millis(ms)).unwrap();
            ms
        })
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, [30, 10, 20]);

    let unordered: Vec<u64> = pool
        .imap_unordered(vec![30u64, 10, 20], |ms| {
            sleep(Duration::from_millis(ms)).unwrap();
            ms
        })
        .map(Result::unwrap)
        .collect();
    assert_eq!(unordered, [10, 20, 30]);
}

#[test]
fn imap_unordered_reports_a_panic_as_an_item() {
    let pool = Pool::new(2);
    let results: Vec<_> = pool
        .imap_unordered(0..3, |i| {
            if i == 1 {
                panic!("boom");
            }
            i
        })
        .collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
}

#[test]
fn killing_the_pool_kills_its_members_and_frees_slots() {
    let pool = Pool::new(3);
    let cleaned = Rc::new(RefCell::new(0));
    struct Cleanup(Rc<RefCell<i32>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            *self.0.borrow_mut() += 1;
        }
    }
    for _ in 0..3 {
        let c = Cleanup(cleaned.clone());
        pool.spawn(move || {
            let _c = c;
            sleep(Duration::from_secs(60)).unwrap();
        })
        .unwrap();
    }
    yield_now();
    assert_eq!(pool.len(), 3);
    pool.kill().unwrap();
    assert_eq!(*cleaned.borrow(), 3);
    assert!(pool.is_empty());
    assert_eq!(pool.free_count(), 3, "killed members gave their slots back");
}

#[test]
fn killing_a_never_started_member_frees_its_slot() {
    let pool = Pool::new(1);
    let g = pool.spawn(|| ()).unwrap();
    g.kill().unwrap();
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn group_add_discard_join_kill_len() {
    let group = Group::new();
    let a = group.spawn(|| sleep(10 * MS));
    let b = spawn(|| sleep(Duration::from_secs(60)));
    group.add(&b);
    assert_eq!(group.len(), 2);
    assert!(group.contains(&b));
    assert!(group.discard(&b));
    assert_eq!(group.len(), 1);
    group.join().unwrap();
    assert!(a.dead());
    assert!(group.is_empty());
    group.add(&b);
    assert!(!group.join_timeout(5 * MS).unwrap());
    group.kill().unwrap();
    assert!(b.dead() && b.killed());
}
