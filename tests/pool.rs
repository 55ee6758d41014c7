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

mod resize_starmap_pile {
    use greenlet::pool::{GreenPile, Pool};
    use greenlet::sync::Event;
    use greenlet::{sleep, spawn, yield_now, GreenletError, Interrupted, Timeout};
    use std::time::Duration;

    #[test]
    fn growing_a_pool_lets_waiting_spawners_in_at_once() {
        let pool = Pool::new(1);
        let gate = Event::new();
        let g = gate.clone();
        pool.spawn(move || g.wait()).unwrap();
        assert!(pool.full());
        let p = pool.clone();
        let spawner = spawn(move || p.spawn(|| "second").map(|g| g.get().unwrap()));
        yield_now();
        assert!(!spawner.dead(), "waits for a slot");
        pool.resize(2);
        assert_eq!(spawner.get().unwrap().unwrap(), "second");
        assert_eq!(pool.size(), 2);
        gate.set();
        pool.join().unwrap();
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn shrinking_a_pool_kills_nothing_and_retires_slots_as_members_end() {
        let pool = Pool::new(3);
        let gate = Event::new();
        let members: Vec<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                pool.spawn(move || g.wait()).unwrap()
            })
            .collect();
        pool.resize(1);
        assert_eq!((pool.size(), pool.len(), pool.free_count()), (1, 3, 0));
        yield_now();
        assert!(members.iter().all(|m| !m.dead()), "nothing is killed");
        gate.set();
        pool.join().unwrap();
        assert_eq!(pool.free_count(), 1, "two slots were retired");
        // Shrink with free slots, then grow back over the debt.
        pool.resize(0);
        assert!(pool.full());
        pool.resize(2);
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn starmap_spreads_tuples_over_the_arguments_in_input_order() {
        let pool = Pool::new(2);
        let out: Vec<String> = pool
            .starmap([(3u64, "c"), (1, "a"), (2, "b")], |ms, s| {
                sleep(Duration::from_millis(ms)).unwrap();
                s.repeat(2)
            })
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, ["cc", "aa", "bb"]);
        let one: Vec<i32> = pool
            .starmap(vec![(5,)], |x| x * 2)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(one, [10]);
    }

    #[test]
    fn a_green_pile_yields_results_in_spawn_order_with_failures_in_place() {
        let mut pile = GreenPile::new(2);
        for ms in [20u64, 1, 10] {
            pile.spawn(move || {
                sleep(Duration::from_millis(ms)).unwrap();
                ms
            })
            .unwrap();
        }
        pile.spawn(|| -> u64 { panic!("bad") }).unwrap();
        assert_eq!(pile.len(), 4);
        assert_eq!(pile.next().unwrap().unwrap(), 20);
        assert_eq!(pile.next().unwrap().unwrap(), 1);
        assert_eq!(pile.next().unwrap().unwrap(), 10);
        assert!(matches!(pile.next(), Some(Err(GreenletError::Panicked(_)))));
        assert!(pile.next().is_none() && pile.is_empty());
    }

    #[test]
    fn an_interrupted_pile_wait_keeps_the_greenlet_for_the_next_call() {
        let mut pile = GreenPile::with_pool(Pool::new(1));
        let gate = Event::new();
        let g = gate.clone();
        pile.spawn(move || g.wait().map(|()| "late")).unwrap();
        let t = Timeout::start_new(Duration::from_millis(2));
        let first = pile.next().unwrap().unwrap_err();
        assert!(t.is(&first), "{first:?}");
        assert!(matches!(
            first,
            GreenletError::Interrupted(Interrupted::Timeout(_))
        ));
        assert_eq!(pile.len(), 1);
        gate.set();
        assert_eq!(pile.next().unwrap().unwrap().unwrap(), "late");
    }
}

/// `kill` goes on until the group is empty: a member added while it kills
/// (here by a dying member's cleanup) is killed too.
#[test]
fn kill_also_kills_members_added_meanwhile() {
    struct SpawnsOnDrop(Group);
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            let _ = self.0.spawn(|| sleep(Duration::from_secs(3600)));
        }
    }
    let group = Group::new();
    let g = group.clone();
    group.spawn(move || {
        let _cleanup = SpawnsOnDrop(g);
        let _ = sleep(Duration::from_secs(3600));
    });
    yield_now();
    group.kill().unwrap();
    assert_eq!(group.len(), 0, "a member added by a dying one survived");
}

/// A spawner waiting for a pool slot gets the one a kill frees; `kill`
/// kills its member too, and the pool ends empty with every slot free.
#[test]
fn pool_kill_also_kills_the_member_of_a_waiting_spawner() {
    let pool = Pool::new(1);
    pool.spawn(|| sleep(Duration::from_secs(3600))).unwrap();
    let p = pool.clone();
    let spawner = spawn(move || p.spawn(|| sleep(Duration::from_secs(3600))).is_ok());
    yield_now(); // it waits for the slot
    pool.kill().unwrap();
    assert!(spawner.get().unwrap(), "the spawner got the freed slot");
    assert_eq!((pool.len(), pool.free_count()), (0, 1));
}

/// A member that kills its own group kills the others, then dies itself
/// at its next wait.
#[test]
fn a_member_killing_its_group_dies_last() {
    let group = Group::new();
    let other = group.spawn(|| sleep(Duration::from_secs(3600)));
    let g = group.clone();
    let killer = group.spawn(move || {
        g.kill().unwrap();
        let _ = sleep(Duration::from_secs(3600)); // killed here
    });
    killer.join().unwrap();
    assert!(other.killed() && killer.killed());
    assert_eq!(group.len(), 0);
}
