//! `wait`/`iwait` over a mix of greenlets, events, async results and fd
//! readiness: completion order (also within one loop turn), ready objects
//! first in the order given, `count`, `timeout`, interruptions, LoopExit,
//! and no helper left behind.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use greenlet::net::{Interest, Readiness, UnixStream};
use greenlet::sync::{AsyncResult, Event};
use greenlet::{
    hub, iwait, sleep, spawn, spawn_link, wait, yield_now, Interrupted, Timeout, Waitable,
};

#[test]
fn iwait_reports_in_completion_order_even_within_one_turn() {
    let (a, b, c) = (Event::new(), Event::new(), Event::new());
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    spawn(move || {
        // Once iwait's waits are all in place...
        while a2.waiters() + b2.waiters() + c2.waiters() < 3 {
            yield_now();
        }
        // ...all three in one go, without yielding: c, then a, then b.
        c2.set();
        a2.set();
        b2.set();
    });
    let order: Vec<usize> = iwait(&[a, b, c], None).map(Result::unwrap).collect();
    assert_eq!(order, [2, 0, 1]);
}

#[test]
fn ready_objects_come_first_in_the_order_given() {
    let done = spawn(|| ());
    done.join().unwrap();
    let set = Event::new();
    set.set();
    let later = Event::new();
    let l = later.clone();
    spawn(move || l.set());
    let objects: [&dyn Waitable; 3] = [&later, &set, &done];
    let order: Vec<usize> = iwait(&objects, None).map(Result::unwrap).collect();
    assert_eq!(order, [1, 2, 0]);
}

#[test]
fn a_mix_of_greenlets_events_async_results_and_fds() {
    let (sock, peer) = UnixStream::pair().unwrap();
    let readable = Readiness::new(sock.as_raw_fd(), Interest::Read).unwrap();
    let flag = Event::new();
    let result: AsyncResult<&str> = AsyncResult::new();
    let (f, r) = (flag.clone(), result.clone());
    let worker = spawn(move || {
        r.set("value");
        sleep(Duration::from_millis(2)).unwrap();
        (&peer).write_all(b"x").unwrap();
        sleep(Duration::from_millis(2)).unwrap();
        f.set();
        peer
    });
    let objects: [&dyn Waitable; 4] = [&worker, &flag, &readable, &result];
    let order = wait(&objects, Some(Duration::from_secs(20)), None).unwrap();
    assert_eq!(order, [3, 2, 1, 0]);
    assert_eq!(result.get().unwrap(), "value");
}

#[test]
fn count_returns_early_and_the_other_waits_stop() {
    let before = hub::stats().greenlets;
    let quick = Event::new();
    let never = Event::new();
    let q = quick.clone();
    spawn(move || q.set()).join().unwrap();
    let first = wait(&[&never, &quick, &never], None, Some(1)).unwrap();
    assert_eq!(first, [1]);
    // The helpers waiting on `never` were killed; let them unwind.
    let t0 = Instant::now();
    while hub::stats().greenlets != before {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "helpers left behind"
        );
        yield_now();
    }
    assert_eq!(never.waiters(), 0);
}

#[test]
fn a_timeout_returns_what_was_ready_and_ends_the_iteration() {
    let never = Event::new();
    let set = Event::new();
    set.set();
    let _keep = spawn(|| sleep(Duration::from_secs(30)));
    let t0 = Instant::now();
    let got = wait(&[&never, &set], Some(Duration::from_millis(10)), None).unwrap();
    assert_eq!(got, [1]);
    assert!(t0.elapsed() >= Duration::from_millis(10));
    let mut it = iwait(&[&never], Some(Duration::from_millis(5)));
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    // A timeout too large for a deadline waits as long as it takes.
    let n = never.clone();
    spawn(move || n.set());
    assert_eq!(wait(&[never], Some(Duration::MAX), None).unwrap(), [0]);
}

#[test]
fn the_callers_timeout_and_a_linked_death_interrupt_the_wait() {
    let never = Event::new();
    let _keep = spawn(|| sleep(Duration::from_secs(30)));
    let t = Timeout::start_new(Duration::from_millis(2));
    let err = wait(&[&never], None, None).unwrap_err();
    assert!(t.is(&err));

    let child = spawn_link(|| ());
    let mut it = iwait(&[&never], None);
    match it.next() {
        Some(Err(Interrupted::LinkedExited(dead))) => assert_eq!(dead.id(), child.id()),
        other => panic!("{other:?}"),
    }
    // Iterating on keeps waiting: set it now.
    let n = never.clone();
    spawn(move || n.set());
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(it.next().is_none());
}

#[test]
fn nothing_can_become_ready_is_loop_exit_not_a_hang() {
    let never = Event::new();
    let err = wait(&[never], None, None).unwrap_err();
    match err {
        Interrupted::LoopExit(e) => assert!(e.waiting_on().contains("wait() on 1 objects")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_and_zero_count() {
    let none: [Event; 0] = [];
    assert!(wait(&none, None, None).unwrap().is_empty());
    assert!(wait(&[Event::new()], None, Some(0)).unwrap().is_empty());
}
